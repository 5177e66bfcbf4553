package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// listener is one bound endpoint.
type listener struct {
	ln          net.Listener
	endpoint    string       // as configured
	addr        string       // as bound, with the real port, e.g. "tcp://127.0.0.1:41234"
	curveServer *CurveServer // CURVE settings; nil: the endpoint speaks NULL
	closeOnce   sync.Once
	closeErr    error
}

// close closes the listener once; later calls return the first result.
// For ipc endpoints Go's unix listener removes the socket file.
func (l *listener) close() error {
	l.closeOnce.Do(func() {
		if err := l.ln.Close(); err != nil {
			l.closeErr = fmt.Errorf("close %s: %w", l.addr, err)
		}
	})
	return l.closeErr
}

// ParseEndpoint splits a ZeroMQ endpoint into the network and address
// net.Listen and net.Dial take: "tcp://host:port" (host "*": all
// interfaces, when binding) gives "tcp", or "ipc://path" (absolute
// "ipc:///tmp/x", relative "ipc://x", Linux abstract "ipc://@name") gives
// "unix". Anything else is an error naming what is wanted. Any goroutine.
func ParseEndpoint(endpoint string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok || rest == "":
	case scheme == "tcp":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("endpoint %q: %w", endpoint, err)
		}
		return "tcp", rest, nil
	case scheme == "ipc":
		return "unix", rest, nil
	default:
		return "", "", fmt.Errorf("endpoint %q: unsupported transport %q (want tcp or ipc)", endpoint, scheme)
	}
	return "", "", fmt.Errorf("endpoint %q: want tcp://host:port or ipc://path", endpoint)
}

// listen binds one endpoint (see ParseEndpoint).
func listen(endpoint string) (*listener, error) {
	network, address, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		return listenIPC(endpoint, address)
	}
	return listenTCP(endpoint, address)
}

func listenTCP(endpoint, hostPort string) (*listener, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if host == "*" {
		host = ""
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	return &listener{ln: ln, endpoint: endpoint, addr: "tcp://" + ln.Addr().String()}, nil
}

func listenIPC(endpoint, path string) (*listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return &listener{ln: ln, endpoint: endpoint, addr: "ipc://" + path}, nil
}

// removeStaleSocket removes a unix socket file left behind by a process
// that died without cleaning up, as libzmq does before binding. Unlike
// libzmq it leaves alone a socket that still accepts connections (another
// live server: binding then fails with "address already in use") and any
// file that is not a socket.
func removeStaleSocket(path string) error {
	if strings.HasPrefix(path, "@") { // abstract socket: no file
		return nil
	}
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check socket file: %w", err)
	}
	if info.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil // live: let Listen report the conflict
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket file: %w", err)
	}
	return nil
}
