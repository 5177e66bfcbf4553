package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/allowlist"
	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// curveSide is the server's CURVE as the configuration asks for it: which
// endpoints speak it, with which key pair, and who may connect (the
// allow-list, then handlers.js's authorize export). It keeps the
// allow-list's watcher, which Close stops.
type curveSide struct {
	nullEndpoints, curveEndpoints []string               // the endpoints that speak NULL, and CURVE
	server                        *transport.CurveServer // nil when nothing speaks CURVE
	list                          *allowlist.List        // nil: no allow-list, every key may connect
	srv                           atomic.Pointer[transport.Server]
}

// openCurve sets up CURVE from cfg (already checked). authorize asks
// handlers.js, within the handshake's deadline.
func openCurve(cfg serveConfig, authorize func(ctx context.Context, key, address string) error, log *slog.Logger) (*curveSide, error) {
	c := &curveSide{nullEndpoints: cfg.Bind}
	if cfg.CurveKey == "" {
		return c, nil
	}
	keys, err := curve.LoadSecret(cfg.CurveKey)
	if err != nil {
		return nil, fmt.Errorf("curve_key: %w", err)
	}
	if len(cfg.CurveBind) == 0 {
		c.nullEndpoints, c.curveEndpoints = nil, cfg.Bind
	} else {
		c.curveEndpoints = cfg.CurveBind
	}
	if cfg.CurveAllow != "" || len(cfg.CurveAllowKeys) > 0 {
		fixed, err := parseKeys(cfg.CurveAllowKeys)
		if err != nil {
			return nil, err
		}
		c.list, err = allowlist.Open(cfg.CurveAllow, fixed, log, c.revoke)
		if err != nil {
			return nil, fmt.Errorf("curve_allow: %w", err)
		}
	}
	c.server = &transport.CurveServer{
		Keys: keys,
		Authorize: func(ctx context.Context, k curve.Key, remote string) error {
			if c.list != nil && !c.list.Allowed(k) {
				return errors.New("the key is not on the allow-list (curve_allow, curve_allow_keys)")
			}
			return authorize(ctx, k.String(), remote)
		},
	}
	log.Info("curve on", "server_key", keys.Public.String(), "endpoints", c.curveEndpoints, "allow_list", c.allowListSize())
	return c, nil
}

// allowListSize is how many keys the allow-list holds, or -1 for none.
func (c *curveSide) allowListSize() int {
	if c.list == nil {
		return -1
	}
	return c.list.Len()
}

// serving tells c which server its endpoints belong to, so that a change
// of the allow-list disconnects the keys it no longer holds; a change
// that came while the server started is applied now. Any goroutine.
func (c *curveSide) serving(srv *transport.Server) {
	c.srv.Store(srv)
	c.revoke()
}

// revoke disconnects the connected clients whose keys the allow-list no
// longer holds. The allow-list's watcher goroutine, or serving.
func (c *curveSide) revoke() {
	srv := c.srv.Load()
	if srv == nil || c.list == nil {
		return
	}
	srv.RevokeKeys(c.list.Allowed)
}

// Close stops watching the allow-list. Any goroutine.
func (c *curveSide) Close() {
	if c.list != nil {
		_ = c.list.Close()
	}
}

// parseKeys reads Z85 public keys.
func parseKeys(texts []string) ([]curve.Key, error) {
	keys := make([]curve.Key, 0, len(texts))
	for _, t := range texts {
		k, err := curve.ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("curve_allow_keys: %q: %w", t, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// checkCurve reports what in cfg's CURVE settings cannot work, as serve
// would find it at start.
func checkCurve(cfg serveConfig) []error {
	var errs []error
	for _, b := range cfg.CurveBind {
		if _, _, err := transport.ParseEndpoint(b); err != nil {
			errs = append(errs, fmt.Errorf("curve_bind: %w", err))
		}
	}
	if cfg.CurveKey == "" {
		for _, s := range []struct {
			key string
			set bool
		}{{"curve_bind", len(cfg.CurveBind) > 0}, {"curve_allow", cfg.CurveAllow != ""}, {"curve_allow_keys", len(cfg.CurveAllowKeys) > 0}} {
			if s.set {
				errs = append(errs, fmt.Errorf("%s: needs curve_key (the server's secret key; moebius-js keygen makes one)", s.key))
			}
		}
		return errs
	}
	if _, err := curve.LoadSecret(cfg.CurveKey); err != nil {
		errs = append(errs, fmt.Errorf("curve_key: %w", err))
	}
	if _, err := parseKeys(cfg.CurveAllowKeys); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// curveFlags defines a client command's CURVE flags on fs and returns
// what makes its transport.CurveClient (nil when --curve-server-key is
// not given).
func curveFlags(fs *pflag.FlagSet) func() (*transport.CurveClient, error) {
	server := fs.String("curve-server-key", "", "speak CURVE to the server with this public key (Z85, or its public certificate file)")
	client := fs.String("curve-client-key", "", "with --curve-server-key: the client's secret key, Z85 or a secret certificate file (default: a fresh key pair)")
	return func() (*transport.CurveClient, error) {
		if *server == "" {
			if *client != "" {
				return nil, errors.New("--curve-client-key needs --curve-server-key")
			}
			return nil, nil
		}
		cc := &transport.CurveClient{}
		if c, err := curve.ReadCert(*server); err == nil {
			cc.ServerKey = c.Public
		} else if cc.ServerKey, err = curve.ParseKey(*server); err != nil {
			return nil, fmt.Errorf("curve: --curve-server-key: %w", err)
		}
		var err error
		if *client == "" {
			cc.Keys, err = curve.GenerateKeyPair()
		} else {
			cc.Keys, err = curve.LoadSecret(*client)
		}
		if err != nil {
			return nil, fmt.Errorf("curve: --curve-client-key: %w", err)
		}
		return cc, nil
	}
}

// dialConfig is cfg for one dealer() or request() connection of
// handlers.js, with the identity and CURVE keys it asked for.
// (jsrt checked the keys; without a pair, each connection gets a fresh one).
func dialConfig(cfg transport.DialConfig, opts jsrt.DialOptions) (transport.DialConfig, error) {
	cfg.Identity = opts.Identity
	if k := opts.Curve; k != nil {
		cfg.Curve = &transport.CurveClient{ServerKey: k.ServerKey}
		if k.Keys != nil {
			cfg.Curve.Keys = *k.Keys
		} else {
			keys, err := curve.GenerateKeyPair()
			if err != nil {
				return cfg, fmt.Errorf("curve: %w", err)
			}
			cfg.Curve.Keys = keys
		}
	}
	return cfg, nil
}
