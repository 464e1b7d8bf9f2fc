// Package store keeps the server's durable state in one bbolt file: the
// provisioned devices with their credentials, the live registrations, what
// each device last reported about itself, the firmware images and signed
// packages fotad delivers, the devices' updates and the campaigns. It
// implements lwm2m.DeviceStore, lwm2m.RegistrationStore, lwm2m.InfoStore,
// firmware.Store, update.Store and campaign.Store and is the only package
// that imports bbolt; a networked backend would implement the
// same interfaces and pass the same conformance suite (package storetest).
//
// # Files and processes
//
// Open creates the file (mode 0600, since it holds PSK keys) and its
// directory (mode 0700). bbolt locks the file, so one process holds it at a
// time; a second Open fails with ErrLocked after Options.LockTimeout rather
// than waiting for ever. The package never logs: it returns wrapped errors,
// and no error message contains a PSK key.
//
// # Transactions and durability
//
// Every method is one bbolt transaction. Device writes use Update: they
// are rare and must see each other (PSK identity uniqueness). Registration
// writes use Batch, so that devices registering at the same moment share
// one commit and one fsync; a batch waits at most Options.MaxBatchDelay
// for company. Either way a write is committed and fsynced when the method
// returns nil (unless Options.NoSync), so a registration the server has
// acknowledged survives a SIGKILL or a power cut. Reads use View and never
// block writers. Every method returns ctx.Err() when called with a context
// already done. Firmware writes use Update: they are rare, and each is one
// domain operation (an image with its version and sequence; a package with
// its key; an image's removal with every package made from or to it).
// Update, device info and campaign writes use Batch like registrations:
// they follow devices' progress and come in bursts. PutTargets writes all
// its targets in one transaction, so they are stored together or not at
// all.
//
// # Bucket layout
//
//	meta             schema_version -> 8-byte big-endian uint64
//	devices          endpoint name  -> device record (JSON)
//	psk_identities   PSK identity   -> endpoint name
//	registrations    registration ID -> registration record (JSON)
//	images           image digest -> image record (JSON)
//	image_data       image digest -> the image's bytes
//	image_versions   class, 0x00, version -> image digest
//	class_sequences  class -> 8-byte big-endian uint64, the last sequence given
//	packages         package ID -> package record (JSON)
//	package_data     package ID -> the package's bytes
//	package_keys     precursor digest, image digest, format -> package ID
//	updates          endpoint name  -> update record (JSON)
//	update_history   endpoint name, 0x00, started -> update record (JSON)
//	campaigns        campaign ID -> campaign record (JSON), without its targets
//	campaign_targets campaign ID, 0x00, endpoint name -> target record (JSON)
//	device_info      endpoint name  -> device info record (JSON)
//	classes          class name     -> declared device class record (JSON)
//
// Keys are the UTF-8 bytes of the name or ID, unescaped, so a cursor walks
// them in Go string order: Devices, Registrations, Updates, DeviceInfos
// and Campaigns return records in key order. bbolt does not allow empty
// keys: PutDevice, PutUpdate and PutDeviceInfo reject an empty endpoint,
// PutRegistration an empty ID, PutCampaign and PutTargets an empty
// campaign ID and PutTargets a target with an empty endpoint.
//
// Digests and package IDs (the SHA-256 of the package) are keys as their
// 32 raw bytes, so those buckets walk in digest order. A package_keys key
// is the 32-byte precursor digest (all zero for a full image), the 32-byte
// image digest and the format's name ("full", "delta", "pelion"): 65 bytes
// or more.
//
// Image and package bytes live in buckets of their own so that listing or
// looking up metadata never pages them in. bbolt keeps a large value in
// contiguous overflow pages; the file does not shrink when images are
// removed, but their pages are reused.
//
// psk_identities is a unique index over devices: it holds an entry for
// exactly the devices with a non-empty PSK identity, and is written in the
// same transaction as the device record. A PutDevice whose identity is
// indexed to another endpoint fails with lwm2m.ErrExists; changing or
// clearing a device's identity, or deleting the device, removes its old
// entry.
//
// update_history keeps each endpoint's earlier updates: when PutUpdate
// replaces the endpoint's update with another one (another Started; the
// driver rewrites an update as it progresses and keeps its Started), the
// replaced record moves there in the same transaction, under the endpoint,
// a zero byte and Started as 8-byte big-endian nanoseconds since 1970, so
// that an endpoint's history walks oldest first; UpdateHistory reads it
// newest first. PutUpdate keeps the 20 newest records of an endpoint and
// deletes older ones in the same transaction. Only keys exactly 8 bytes
// longer than the endpoint and its zero byte are the endpoint's (LwM2M
// endpoint names hold no zero byte, but the store does not rely on it).
// DeleteDevice leaves a device's update and its history, as it leaves its
// device info: they record what was done.
//
// A campaign's targets are the campaign_targets keys with the campaign ID
// and a zero byte as prefix, so they walk in endpoint order; campaign IDs
// hold no zero byte (PutCampaign and PutTargets check). Every target
// belongs to a stored campaign: PutTargets checks it in its transaction,
// and campaigns are never deleted.
//
// image_versions is a unique index over images: one entry per image, so a
// version names one image per class. class_sequences holds, per class, the
// last sequence number PutImage gave; it only grows, and removing images
// does not lower it (package firmware's documentation says why).
// package_keys maps each key to exactly one package and every package has
// exactly one key; a package's image (and precursor, for a delta) is
// stored: PutPackage checks it and DeleteImage removes the packages of the
// image it removes, in the same transaction.
//
// # Records
//
// Records are JSON objects of private structs defined in records.go, never
// of the lwm2m or firmware types, so renaming a domain field does not change the file.
// Each record has a record version "v" (1 today). Times are RFC 3339 with
// nanoseconds, written in UTC; durations are integer nanoseconds in fields
// named *_ns (registration "lifetime_ns"); identity kinds are the strings
// "nosec", "psk" and "x509"; PSK keys are base64; digests in records are
// lower-case hex and payload formats the strings "full", "delta" and
// "pelion". Records read back with times in UTC: compare them with
// time.Time.Equal.
//
// Two records follow domain types closely. The update record has
// update.Update's fields one for one, in the same order (update.go
// converts with a type conversion), under this package's JSON names and
// without "v". The campaign record's "spec" is the campaign.Spec the
// field engineer gave, in package campaign's JSON form (the API's),
// durations as strings like "10m"; its state and the targets' states are
// package campaign's strings.
//
// # Schema versions
//
// meta/schema_version is the version of the layout above. Open creates the
// schema in a new file, fails with ErrSchemaTooNew on a file from a newer
// program and runs the missing migrations, in order and in one transaction
// with the version bump, on a file from an older one. A bbolt file with
// buckets but no version is refused with ErrNotStore.
//
//	1  initial schema: meta, devices, psk_identities, registrations;
//	   device and registration records version 1
//	2  firmware: images, image_data, image_versions, class_sequences,
//	   packages, package_data, package_keys (new, empty buckets);
//	   image and package records version 1
//	3  updates: endpoint -> the endpoint's current or last firmware
//	   update (JSON, delivery/update.Update)
//	4  campaigns: campaigns, campaign_targets; device_info (new, empty
//	   buckets); campaign, target and device info records version 1.
//	   Device records gained "class", update records "campaign",
//	   "full_size", "max_block" and "retry_limit", all omitted when
//	   empty, so older records read as they are
//	5  device classes: classes (a new, empty bucket); class records
//	   version 1 (durations as "deadline_ns"). Image records gained
//	   "raw", update records "class" and "raw", omitted when false or
//	   empty, so older records read as they are
//	6  update history: update_history (a new, empty bucket); its
//	   records are update records
package store
