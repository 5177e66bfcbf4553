package dashboard

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// page filters, sorts and cuts the client list as q asks: the page shows
// one page of it, however many clients there are.
func page(all []ClientRow, q query) clientPage {
	rows := all
	if q.filter != "" {
		rows = make([]ClientRow, 0, len(all))
		for _, c := range all {
			if strings.Contains(c.ID, q.filter) || strings.Contains(c.Remote, q.filter) {
				rows = append(rows, c)
			}
		}
	} else {
		rows = slices.Clone(all)
	}
	cmp := clientOrder[q.sort]
	slices.SortStableFunc(rows, func(a, b ClientRow) int {
		c := cmp(&a, &b)
		if q.desc {
			c = -c
		}
		if c == 0 { // ties in the order of their ids, either way
			c = strings.Compare(a.ID, b.ID)
		}
		return c
	})
	p := clientPage{Total: len(rows), Offset: min(q.offset, len(rows)), Limit: q.limit, Sort: q.sort, Desc: q.desc, Filter: q.filter}
	p.Rows = rows[p.Offset:min(p.Offset+q.limit, len(rows))]
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
