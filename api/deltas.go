package api

import (
	"cmp"
	"errors"
	"net/http"
	"slices"

	"github.com/fotahub/fota/delivery/campaign"
)

// DeltaList is the body of GET /api/v1/images/{digest}/deltas: what it
// costs to bring the fleet to the image, one row per firmware version its
// devices run.
type DeltaList struct {
	Image    string     `json:"image"`
	Version  string     `json:"version"`
	Class    string     `json:"class"`
	FullSize int64      `json:"full_size"`
	Deltas   []DeltaRow `json:"deltas"`
}

// DeltaRow is one installed version. DeltaSize is the delta package's size,
// 0 when the devices get the full image or nothing (Reason says why).
// FromImage is the installed image's digest, empty when fotad does not
// hold it (or the version is unknown).
type DeltaRow struct {
	FromVersion string `json:"from_version"`
	FromImage   string `json:"from_image"`
	Devices     int    `json:"devices"`
	DeltaSize   int64  `json:"delta_size"`
	FullSize    int64  `json:"full_size"`
	Reason      string `json:"reason,omitempty"`
}

// imageDeltas answers with the delta sizes from the versions the fleet
// runs to the image. It is a campaign plan over every device the image
// is for, grouped by installed version: the same packages a campaign
// would send, made (and kept) now if they were not yet.
func (s *Server) imageDeltas(w http.ResponseWriter, r *http.Request) {
	images, ok := s.imagesOn(w)
	if !ok {
		return
	}
	campaigns, ok := s.campaignsOn(w)
	if !ok {
		return
	}
	img, err := images.Image(r.Context(), r.PathValue("digest"), "")
	if err != nil {
		s.firmwareError(w, r, err)
		return
	}
	list := DeltaList{Image: img.Digest.String(), Version: img.Version, Class: img.Class, FullSize: img.Size, Deltas: []DeltaRow{}}
	plan, err := campaigns.Plan(r.Context(), campaign.Spec{Image: list.Image, Select: campaign.Selection{All: true}})
	switch {
	case errors.Is(err, campaign.ErrEmpty):
		writeJSON(w, http.StatusOK, list)
		return
	case err != nil:
		s.campaignError(w, r, err)
		return
	}
	rows := map[string]*DeltaRow{}
	for _, d := range plan.Devices {
		row := rows[d.Installed]
		if row == nil {
			row = &DeltaRow{FromVersion: d.Installed, FullSize: d.FullSize, Reason: d.Reason}
			if d.Format.IsDelta() {
				row.DeltaSize = d.Size
			}
			if d.Installed != "" {
				if from, err := images.Image(r.Context(), d.Installed, img.Class); err == nil {
					row.FromImage = from.Digest.String()
				}
			}
			rows[d.Installed] = row
		}
		row.Devices++
	}
	for _, row := range rows {
		list.Deltas = append(list.Deltas, *row)
	}
	slices.SortFunc(list.Deltas, func(a, b DeltaRow) int {
		return cmp.Or(b.Devices-a.Devices, cmp.Compare(a.FromVersion, b.FromVersion))
	})
	writeJSON(w, http.StatusOK, list)
}
