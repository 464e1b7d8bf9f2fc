package api

import (
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fotahub/fota/coap"
	"github.com/fotahub/fota/delivery/campaign"
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

// campaignMetricsRetention is how long a finished campaign's series stay
// exported after it ended: long enough for its last values to be scraped,
// while the campaigns of months do not pile up as series.
const campaignMetricsRetention = 24 * time.Hour

// targetStates are every device state of a campaign, always exported for
// each campaign shown, at zero when no device is in it.
var targetStates = []campaign.TargetState{
	campaign.TargetPending, campaign.TargetRunning, campaign.TargetDone, campaign.TargetFailed,
	campaign.TargetCancelled, campaign.TargetSkipped, campaign.TargetExpired,
}

// campaignCollector exposes the campaigns' progress, read when Prometheus
// scrapes. Labels are the campaign ID, a device state and an Update Result
// number: never endpoints or free text.
type campaignCollector struct {
	campaigns Campaigns
	now       func() time.Time

	devices     *prometheus.Desc
	bytesServed *prometheus.Desc
	bytesSaved  *prometheus.Desc
	failures    *prometheus.Desc
	running     *prometheus.Desc
}

func newCampaignCollector(campaigns Campaigns, now func() time.Time) *campaignCollector {
	return &campaignCollector{
		campaigns: campaigns,
		now:       now,
		devices: prometheus.NewDesc("fota_campaign_devices",
			"Devices of a campaign by state.", []string{"campaign", "state"}, nil),
		bytesServed: prometheus.NewDesc("fota_campaign_bytes_served",
			"Package bytes served to a campaign's devices.", []string{"campaign"}, nil),
		bytesSaved: prometheus.NewDesc("fota_campaign_bytes_saved",
			"Bytes deltas saved a campaign's updated devices against the full image.", []string{"campaign"}, nil),
		failures: prometheus.NewDesc("fota_campaign_failures",
			"Failed devices of a campaign by the Update Result (/5/0/5) they reported.", []string{"campaign", "result"}, nil),
		running: prometheus.NewDesc("fota_campaign_running",
			"Updates of a campaign's devices running now.", []string{"campaign"}, nil),
	}
}

func (c *campaignCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.devices
	ch <- c.bytesServed
	ch <- c.bytesSaved
	ch <- c.failures
	ch <- c.running
}

func (c *campaignCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, p := range c.campaigns.Progresses() {
		if p.State.Finished() && !p.Ended.IsZero() && now.Sub(p.Ended) > campaignMetricsRetention {
			continue
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{p.ID}, labels...)...)
		}
		for _, st := range targetStates {
			gauge(c.devices, float64(p.Counts[st]), string(st))
		}
		gauge(c.bytesServed, float64(p.BytesServed))
		gauge(c.bytesSaved, float64(p.BytesSaved))
		gauge(c.running, float64(p.Running))
		byResult := map[int]int{}
		for _, g := range p.Failures {
			byResult[g.Result] += g.Count
		}
		results := make([]int, 0, len(byResult))
		for r := range byResult {
			results = append(results, r)
		}
		sort.Ints(results)
		for _, r := range results {
			gauge(c.failures, float64(byResult[r]), strconv.Itoa(r))
		}
	}
}
