// Command testapp is meshcert's workload: an HTTP server whose answers identify the pod that
// served them, with health endpoints the suites can flip, and a client mode that runs inside the
// cluster (requests must come from a pod, not the host). Standard library only, so the image is
// one static binary built from this file.
//
// Server:   testapp serve [--port 8080] [--drain 0s]
//
//	GET  /                -> JSON {pod, namespace, node, ip, port, path, headers}
//	     ?delay=250ms     -> sleep before answering;  ?status=503 -> answer with that code
//	GET  /healthz         -> liveness  (200 while live, 500 after POST /admin/live?ok=false)
//	GET  /readyz          -> readiness (200 while ready, 503 after POST /admin/ready?ok=false)
//	POST /admin/live?ok=  and /admin/ready?ok=  flip them; GET /admin/state shows counters
//	SIGTERM: readiness goes false at once, the listener stays open for --drain, then exits.
//
// Client:   testapp load --url U [--rate 50] [--duration 10s | --count N] [--timeout 2s] [--keepalive=false]
//
//	prints one JSON summary line {sent, ok, failed, errors{...}, by_pod{...}, p50_ms, p99_ms}
//
// Resolve:  testapp resolve [--type A|SRV] NAME  -> JSON list of answers (flags before NAME)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve|load|resolve ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "resolve":
		err = resolve(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

type state struct {
	live, ready atomic.Bool
	served      atomic.Int64
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func flip(target *atomic.Bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		ok, err := strconv.ParseBool(r.URL.Query().Get("ok"))
		if err != nil {
			http.Error(w, "ok=true|false required", http.StatusBadRequest)
			return
		}
		target.Store(ok)
		writeJSON(w, http.StatusOK, map[string]bool{"ok": ok})
	}
}

func health(target *atomic.Bool, failCode int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if target.Load() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		writeJSON(w, failCode, map[string]string{"status": "failing"})
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", 8080, "listen port")
	drain := fs.Duration("drain", 0, "keep serving this long after SIGTERM (readiness false)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st := &state{}
	st.live.Store(true)
	st.ready.Store(os.Getenv("START_UNREADY") == "")
	identity := map[string]string{
		"pod": os.Getenv("POD_NAME"), "namespace": os.Getenv("POD_NAMESPACE"),
		"node": os.Getenv("NODE_NAME"), "ip": os.Getenv("POD_IP"),
	}
	if identity["pod"] == "" {
		identity["pod"], _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", health(&st.live, http.StatusInternalServerError))
	mux.HandleFunc("/readyz", health(&st.ready, http.StatusServiceUnavailable))
	mux.HandleFunc("/admin/live", flip(&st.live))
	mux.HandleFunc("/admin/ready", flip(&st.ready))
	mux.HandleFunc("/admin/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"live": st.live.Load(), "ready": st.ready.Load(), "served": st.served.Load(),
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		st.served.Add(1)
		q := r.URL.Query()
		if d, err := time.ParseDuration(q.Get("delay")); err == nil && d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		code := http.StatusOK
		if s, err := strconv.Atoi(q.Get("status")); err == nil && s >= 200 && s <= 599 {
			code = s
		}
		body := map[string]any{"path": r.URL.Path, "port": *port, "headers": r.Header, "method": r.Method}
		for k, v := range identity {
			body[k] = v
		}
		writeJSON(w, code, body)
	})
	srv := &http.Server{Addr: ":" + strconv.Itoa(*port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-stop:
	}
	st.ready.Store(false)
	time.Sleep(*drain)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

type summary struct {
	Sent    int64            `json:"sent"`
	OK      int64            `json:"ok"`
	Failed  int64            `json:"failed"`
	Late    int64            `json:"late"`
	Errors  map[string]int64 `json:"errors"`
	ByPod   map[string]int64 `json:"by_pod"`
	Codes   map[string]int64 `json:"codes"`
	P50Ms   float64          `json:"p50_ms"`
	P99Ms   float64          `json:"p99_ms"`
	Seconds float64          `json:"seconds"`
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	rate := fs.Float64("rate", 50, "requests per second (open model: scheduled, not paced by replies)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	count := fs.Int64("count", 0, "send exactly this many requests (overrides duration)")
	timeout := fs.Duration("timeout", 2*time.Second, "per-request timeout")
	okCodes := fs.String("ok", "2xx", "what counts as success: 2xx or a comma list of codes")
	keepAlive := fs.Bool("keepalive", true, "reuse connections; false opens one per request, so a "+
		"Service (which balances per connection) spreads requests over its endpoints")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *rate <= 0 {
		return errors.New("--url and a positive --rate are required")
	}
	n := *count
	if n == 0 {
		n = int64(duration.Seconds() * *rate)
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, DisableKeepAlives: !*keepAlive,
	}}
	s := summary{Errors: map[string]int64{}, ByPod: map[string]int64{}, Codes: map[string]int64{}}
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	for i := int64(0); i < n; i++ {
		planned := start.Add(time.Duration(i) * interval)
		if d := time.Until(planned); d > 0 {
			time.Sleep(d)
		} else if -d > interval*10 { // more than 10 slots behind: the client itself is the bottleneck
			mu.Lock()
			s.Late++
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			resp, err := client.Get(*url)
			ms := float64(time.Since(t0).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			s.Sent++
			if err != nil {
				s.Failed++
				s.Errors[classify(err)]++
				return
			}
			defer resp.Body.Close()
			var body struct {
				Pod string `json:"pod"`
			}
			raw, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(raw, &body)
			s.Codes[strconv.Itoa(resp.StatusCode)]++
			if success(resp.StatusCode, *okCodes) {
				s.OK++
				s.ByPod[body.Pod]++
				lat = append(lat, ms)
			} else {
				s.Failed++
				s.Errors["status_"+strconv.Itoa(resp.StatusCode)]++
			}
		}()
	}
	wg.Wait()
	s.Seconds = time.Since(start).Seconds()
	sort.Float64s(lat)
	s.P50Ms, s.P99Ms = quantile(lat, 0.50), quantile(lat, 0.99)
	return json.NewEncoder(os.Stdout).Encode(s)
}

func success(code int, spec string) bool {
	if spec == "2xx" {
		return code >= 200 && code < 300
	}
	for _, c := range splitComma(spec) {
		if strconv.Itoa(code) == c {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		if r == ',' {
			out = append(out, cur)
			cur = ""
			continue
		}
		cur += string(r)
	}
	return append(out, cur)
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	default:
		return "other"
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(q * float64(len(sorted)-1))
	return sorted[idx]
}

func resolve(args []string) error {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	kind := fs.String("type", "A", "A or SRV")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: testapp resolve NAME [--type A|SRV]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var r net.Resolver
	out := []string{}
	switch *kind {
	case "A":
		addrs, err := r.LookupHost(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		out = append(out, addrs...)
	case "SRV":
		_, srvs, err := r.LookupSRV(ctx, "", "", fs.Arg(0))
		if err != nil {
			return err
		}
		for _, s := range srvs {
			out = append(out, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
	default:
		return fmt.Errorf("unknown --type %q", *kind)
	}
	sort.Strings(out)
	return json.NewEncoder(os.Stdout).Encode(out)
}
