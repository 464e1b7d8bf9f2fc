package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/fotahub/fota/delivery/campaign"
)

var _ campaign.Store = (*DB)(nil)

// targetPrefix is the campaign_targets key prefix of a campaign's
// targets: the campaign ID and a zero byte. Campaign IDs hold no zero byte
// (checkCampaignID), so one campaign's prefix is never another's.
func targetPrefix(id string) []byte {
	k := make([]byte, 0, len(id)+1)
	k = append(k, id...)
	return append(k, 0)
}

// targetKey is the campaign_targets key of a campaign's device: the
// campaign ID, a zero byte, the endpoint.
func targetKey(id, endpoint string) []byte {
	return append(targetPrefix(id), endpoint...)
}

// checkCampaignID rejects IDs that cannot be keys: bbolt has no empty
// keys, and a zero byte would blur targetKey's boundary.
func checkCampaignID(id string) error {
	switch {
	case id == "":
		return errors.New("empty campaign id")
	case strings.IndexByte(id, 0) >= 0:
		return errors.New("campaign id holds a zero byte")
	}
	return nil
}

// PutCampaign creates or replaces the campaign with c.ID, without its
// targets: c.Targets is not written and the stored targets stay as they
// are. Writes are batched like PutRegistration's and durable when
// PutCampaign returns nil.
func (db *DB) PutCampaign(ctx context.Context, c campaign.Campaign) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCampaignID(c.ID); err != nil {
		return fmt.Errorf("put campaign %q: %w", c.ID, err)
	}
	val, err := encodeCampaign(c)
	if err != nil {
		return fmt.Errorf("put campaign %q: %w", c.ID, err)
	}
	key := []byte(c.ID)
	// Batch may run this function more than once; it must stay idempotent.
	err = db.bolt.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketCampaigns).Put(key, val) })
	if err != nil {
		return fmt.Errorf("put campaign %q: %w", c.ID, boltErr(err))
	}
	return nil
}

// PutTargets creates or replaces each of ts by endpoint, all in one
// batched transaction: either every target is stored or none is. It fails
// with an error wrapping campaign.ErrNotFound when the campaign is not
// stored. With several targets for one endpoint the last one wins.
func (db *DB) PutTargets(ctx context.Context, id string, ts []campaign.Target) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCampaignID(id); err != nil {
		return fmt.Errorf("put targets of campaign %q: %w", id, err)
	}
	type put struct{ key, val []byte }
	puts := make([]put, len(ts))
	for i, t := range ts {
		if t.Endpoint == "" {
			return fmt.Errorf("put targets of campaign %q: target %d has an empty endpoint", id, i)
		}
		val, err := encodeTarget(t)
		if err != nil {
			return fmt.Errorf("put target %q of campaign %q: %w", t.Endpoint, id, err)
		}
		puts[i] = put{targetKey(id, t.Endpoint), val}
	}
	key := []byte(id)
	// Batch may run this function more than once; it must stay idempotent.
	err := db.bolt.Batch(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCampaigns).Get(key) == nil {
			return campaign.ErrNotFound
		}
		targets := tx.Bucket(bucketCampaignTargets)
		for _, p := range puts {
			if err := targets.Put(p.key, p.val); err != nil {
				return fmt.Errorf("target %q: %w", p.key[len(key)+1:], err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put targets of campaign %q: %w", id, boltErr(err))
	}
	return nil
}

// Campaigns returns every campaign in ID order, each with its targets in
// endpoint order, read in one transaction.
func (db *DB) Campaigns(ctx context.Context) ([]campaign.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cs []campaign.Campaign
	err := db.bolt.View(func(tx *bolt.Tx) error {
		targets := tx.Bucket(bucketCampaignTargets).Cursor()
		return tx.Bucket(bucketCampaigns).ForEach(func(k, v []byte) error {
			c, err := decodeCampaign(v)
			if err != nil {
				return fmt.Errorf("campaign %q: %w", k, err)
			}
			prefix := targetPrefix(string(k))
			for tk, tv := targets.Seek(prefix); tk != nil && bytes.HasPrefix(tk, prefix); tk, tv = targets.Next() {
				t, err := decodeTarget(tv)
				if err != nil {
					return fmt.Errorf("campaign %q: target %q: %w", k, tk[len(prefix):], err)
				}
				c.Targets = append(c.Targets, t)
			}
			cs = append(cs, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", boltErr(err))
	}
	return cs, nil
}
