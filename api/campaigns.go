package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fotahub/fota/delivery/campaign"
	"github.com/fotahub/fota/delivery/firmware"
)

// Campaigns creates and runs update campaigns: firmware rolled out to a
// selection of devices in waves, under limits. *campaign.Manager is one.
type Campaigns interface {
	// Plan is a dry run of the spec: who would get which package, and
	// how long it would take. campaign.ErrInvalid for a bad spec,
	// campaign.ErrEmpty when it selects no device.
	Plan(ctx context.Context, spec campaign.Spec) (campaign.Plan, error)
	// Create plans the spec and stores it as a campaign, not started.
	Create(ctx context.Context, spec campaign.Spec) (campaign.Campaign, error)
	// Get returns the campaign with its targets; campaign.ErrNotFound.
	Get(id string) (campaign.Campaign, error)
	// Progress summarizes the campaign; campaign.ErrNotFound.
	Progress(id string) (campaign.Progress, error)
	// Progresses summarizes every campaign, oldest first.
	Progresses() []campaign.Progress
	// Start, Pause, Resume and Cancel change the campaign's state:
	// campaign.ErrState when its state does not allow the change.
	Start(ctx context.Context, id string) (campaign.Campaign, error)
	Pause(ctx context.Context, id string) (campaign.Campaign, error)
	Resume(ctx context.Context, id string) (campaign.Campaign, error)
	Cancel(ctx context.Context, id string) (campaign.Campaign, error)
}

// Timing and limits of the campaign routes.
const (
	// campaignPollInterval is how often the campaign event stream reads
	// the campaign's progress: campaigns move in device updates, which
	// take minutes, so a second is quick enough for a person watching.
	campaignPollInterval = time.Second
	// maxCampaignBodyBytes bounds a campaign spec, which may name
	// thousands of endpoints.
	maxCampaignBodyBytes = 1 << 20
)

const campaignSpecFields = `name, image, select {endpoints, class, versions, tags, all}, ` +
	`waves [{count, percent, soak}], limits {max_concurrent, per_tag, bytes_per_hour, window {start, end}}, ` +
	`failure {max_failures, max_failure_percent, retries}, delivery {full, push, block_size}, asleep_wait, deadline`

// CampaignBody is the body of GET /api/v1/campaigns/{id} (the campaign
// with its targets) and of POST /api/v1/campaigns (without them).
type CampaignBody struct {
	Campaign campaign.Campaign `json:"campaign"`
	Progress campaign.Progress `json:"progress"`
}

// CampaignList is the body of GET /api/v1/campaigns.
type CampaignList struct {
	Campaigns []campaign.Progress `json:"campaigns"`
}

// campaignsOn answers 503 and reports false when campaigns are off.
func (s *Server) campaignsOn(w http.ResponseWriter) (Campaigns, bool) {
	if s.campaigns == nil {
		writeError(w, http.StatusServiceUnavailable, "campaigns not enabled")
		return nil, false
	}
	return s.campaigns, true
}

func campaignPath(id string) string { return "/api/v1/campaigns/" + url.PathEscape(id) }

// decodeSpec reads and checks a campaign spec, answering 400 or 413
// itself when it is not a good one.
func decodeSpec(w http.ResponseWriter, r *http.Request) (campaign.Spec, bool) {
	var spec campaign.Spec
	if !decodeBodyMax(w, r, &spec, maxCampaignBodyBytes, `a campaign spec, {"image":"VERSION or DIGEST","select":{"all":true}}`,
		campaignSpecFields) {
		return spec, false
	}
	spec.Image = strings.TrimSpace(spec.Image)
	if err := spec.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return spec, false
	}
	return spec, true
}

// campaignError answers for an error of the campaign manager:
//
//	400 a bad spec, a version several classes have, an invalid reference
//	404 no such campaign or image
//	409 the campaign's state does not allow the change
//	422 the selection matches no device
//	500 anything else (logged)
func (s *Server) campaignError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, campaign.ErrInvalid), errors.Is(err, firmware.ErrInvalid), errors.Is(err, firmware.ErrAmbiguous):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, campaign.ErrNotFound), errors.Is(err, firmware.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, campaign.ErrState), errors.Is(err, firmware.ErrClassMismatch), errors.Is(err, firmware.ErrNotNewer):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, campaign.ErrEmpty):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		s.internalError(w, r, err)
	}
}

// planCampaign answers POST /api/v1/campaigns/plan.
func (s *Server) planCampaign(w http.ResponseWriter, r *http.Request) {
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	spec, ok := decodeSpec(w, r)
	if !ok {
		return
	}
	p, err := campaigns.Plan(r.Context(), spec)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// createCampaign answers POST /api/v1/campaigns: 201 with the campaign,
// without its targets, and its progress.
func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) {
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	spec, ok := decodeSpec(w, r)
	if !ok {
		return
	}
	// A campaign is stored in several writes: a client that goes away
	// must not cut them short. It finds the campaign in the list.
	c, err := campaigns.Create(context.WithoutCancel(r.Context()), spec)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	p, err := campaigns.Progress(c.ID)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	c.Targets = nil
	w.Header().Set("Location", campaignPath(c.ID))
	writeJSON(w, http.StatusCreated, CampaignBody{Campaign: c, Progress: p})
}

// listCampaigns answers GET /api/v1/campaigns: every campaign's progress,
// oldest first.
func (s *Server) listCampaigns(w http.ResponseWriter, _ *http.Request) {
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	list := CampaignList{Campaigns: campaigns.Progresses()}
	if list.Campaigns == nil {
		list.Campaigns = []campaign.Progress{}
	}
	writeJSON(w, http.StatusOK, list)
}

// showCampaign answers GET /api/v1/campaigns/{id}.
func (s *Server) showCampaign(w http.ResponseWriter, r *http.Request) {
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	c, err := campaigns.Get(id)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	p, err := campaigns.Progress(id)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, CampaignBody{Campaign: c, Progress: p})
}

// campaignAction answers POST /api/v1/campaigns/{id}/start, pause, resume
// and cancel with the campaign's progress after the change.
func (s *Server) campaignAction(action func(Campaigns, context.Context, string) (campaign.Campaign, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		campaigns, ok := s.campaignsOn(w)
		if !ok {
			return
		}
		id := r.PathValue("id")
		if _, err := action(campaigns, r.Context(), id); err != nil {
			s.campaignError(w, r, err)
			return
		}
		p, err := campaigns.Progress(id)
		if err != nil {
			s.campaignError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	}
}

// campaignEvents streams GET /api/v1/campaigns/{id}/events as Server-Sent
// Events: a "progress" event whose data is the campaign's Progress, at
// once and then whenever it changes, until an event of a finished
// campaign (done or cancelled) has been sent, the client goes away, or
// StopStreams. Like updateEvents it polls, every campaignPollInterval, and
// sends a keep-alive comment after updateKeepAlive of silence.
func (s *Server) campaignEvents(w http.ResponseWriter, r *http.Request) {
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	if s.stopCtx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	id := r.PathValue("id")
	p, err := campaigns.Progress(id)
	if err != nil {
		s.campaignError(w, r, err)
		return
	}
	s.pollStream(w, r, "progress", s.campaignPoll, func(first bool) (any, any, bool, bool) {
		if !first {
			if p, err = campaigns.Progress(id); err != nil {
				return nil, nil, false, false // the campaign is gone
			}
		}
		return p, p, p.State.Finished(), true
	})
}
