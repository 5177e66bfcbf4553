package dashboard

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// page filters, sorts and cuts the client list as q asks: the page shows
// one page of it, however many clients there are. It sorts pointers, so
// that a poll at 10,000 clients moves words, not rows.
func page(all []ClientRow, q query) clientPage {
	rows := make([]*ClientRow, 0, len(all))
	for i := range all {
		if c := &all[i]; q.filter == "" || strings.Contains(c.ID, q.filter) || strings.Contains(c.Remote, q.filter) {
			rows = append(rows, c)
		}
	}
	order := clientOrder[q.sort]
	slices.SortFunc(rows, func(a, b *ClientRow) int {
		c := order(a, b)
		if q.desc {
			c = -c
		}
		if c == 0 { // ties in the order of their ids, either way
			c = strings.Compare(a.ID, b.ID)
		}
		return c
	})
	p := clientPage{Total: len(rows), Offset: min(q.offset, len(rows)), Limit: q.limit, Sort: q.sort, Desc: q.desc, Filter: q.filter}
	p.Rows = make([]ClientRow, 0, q.limit)
	for _, c := range rows[p.Offset:min(p.Offset+q.limit, len(rows))] {
		p.Rows = append(p.Rows, *c)
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
