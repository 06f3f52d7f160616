package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the proxy's Prometheus series (house-style §8): bounded labels only — route IDs, never raw
// paths or MXIDs.
type metrics struct {
	registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	decisions        *prometheus.CounterVec
	policyEval       prometheus.Histogram
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	longPolls        *prometheus.CounterVec
	listAge          prometheus.GaugeFunc
	listVersion      prometheus.GaugeFunc
}

func newMetrics(listAge, listVersion func() float64) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "timstack_http_requests_total", Help: "Requests handled, by surface, route, method and status.",
	}, []string{"surface", "route", "method", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "timstack_http_request_duration_seconds", Help: "Time to answer a request, upstream included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"surface", "route"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "timstack_policy_decisions_total", Help: "Policy decisions by result and first reason.",
	}, []string{"result", "reason"})
	m.policyEval = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "timstack_policy_eval_duration_seconds", Help: "Policy evaluation time.",
		Buckets: []float64{1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2},
	})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "timstack_upstream_request_duration_seconds", Help: "Upstream request time by upstream.",
		Buckets: prometheus.DefBuckets,
	}, []string{"upstream"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "timstack_upstream_errors_total", Help: "Upstream failures by upstream and kind.",
	}, []string{"upstream", "kind"})
	m.longPolls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "timstack_long_poll_responses_total",
		Help: "Long-polls relayed on the hijacked path, by the homeserver's status (their requests count with code \"hijacked\").",
	}, []string{"code"})
	m.listAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "timstack_federation_list_age_seconds", Help: "Time since the last verified contact with the list source.",
	}, listAge)
	m.listVersion = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "timstack_federation_list_version", Help: "Version of the verified federation list in use.",
	}, listVersion)
	m.registry.MustRegister(m.requests, m.requestDuration, m.decisions, m.policyEval, m.upstreamDuration,
		m.upstreamErrors, m.longPolls, m.listAge, m.listVersion, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
