package api

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fotahub/fota/coap"
)

// collector exposes the registration count and the transport counters,
// read when Prometheus scrapes rather than mirrored into metric objects.
type collector struct {
	regs      Registrations
	transport TransportStats

	registrations *prometheus.Desc
	handshakes    *prometheus.Desc
	messages      *prometheus.Desc
	sessions      *prometheus.Desc
	parked        *prometheus.Desc
}

func newCollector(regs Registrations, transport TransportStats) *collector {
	return &collector{
		regs:      regs,
		transport: transport,
		registrations: prometheus.NewDesc("fota_registrations",
			"Number of live LwM2M registrations.", nil, nil),
		handshakes: prometheus.NewDesc("fota_dtls_handshakes_total",
			"Finished DTLS handshakes by outcome.", []string{"outcome"}, nil),
		messages: prometheus.NewDesc("fota_coap_messages_total",
			"CoAP messages received (in) and sent (out).", []string{"direction"}, nil),
		sessions: prometheus.NewDesc("fota_coap_sessions",
			"Open CoAP sessions: DTLS sessions plus tracked plain CoAP peers.", nil, nil),
		parked: prometheus.NewDesc("fota_coap_sessions_parked",
			"Idle DTLS sessions parked: their keys kept, their buffers and goroutines released.", nil, nil),
	}
}

// handshakeOutcomes are always exported, at zero until they happen, so
// that rate() and alerts work from the first scrape.
var handshakeOutcomes = []string{
	coap.HandshakeOK,
	coap.HandshakeUnknownIdentity,
	coap.HandshakeBadCertificate,
	coap.HandshakeTimeout,
	coap.HandshakeFailed,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.registrations
	ch <- c.handshakes
	ch <- c.messages
	ch <- c.sessions
	ch <- c.parked
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.registrations, prometheus.GaugeValue, float64(c.regs.Count()))

	st := c.transport.Stats()
	outcomes := append([]string(nil), handshakeOutcomes...)
	for o := range st.Handshakes {
		if !contains(handshakeOutcomes, o) {
			outcomes = append(outcomes, o)
		}
	}
	sort.Strings(outcomes)
	for _, o := range outcomes {
		ch <- prometheus.MustNewConstMetric(c.handshakes, prometheus.CounterValue, float64(st.Handshakes[o]), o)
	}
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(st.MessagesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(st.MessagesOut), "out")
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(st.Parked))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
