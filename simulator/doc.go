// Package simulator plays LwM2M devices the way cellular ones behave, for
// tests, demonstrations and load: each Device registers over DTLS (PSK or
// X.509, with Connection ID), sends periodic Updates, sleeps between
// wake-ups in queue mode, and implements Object 5 completely: pull
// downloads with Block2 that resume at the next missing block after a link
// drop or a power loss, pushes with Block1 taken block by block, the signed
// manifest checked before a byte is written, deltas applied as they arrive
// by the bounded-RAM applier, and a two-slot flash with a bootloader that
// boots the new image on trial and rolls back a bad one.
//
// A device plays one of several LwM2M client stacks (Config.Client): by
// default fotahub's own, described above, or a raw client as most field
// devices run, which takes its vendor's image byte for byte and has its
// stack's habits. zephyr (Zephyr with MCUboot) and anjay (an Anjay-based
// product with a vendor blob) download over a DTLS session of their own,
// differ in block size, Size2, what survives a reboot and when they report
// the result of an update: the server is tested against each of them.
//
// Faults (power loss, corrupted blocks, wrong precursor, bad images, reboot
// loops, low battery, clock jumps) are injected on command or at random.
// The link in front of each device is emulated by package simulator/link.
//
// # Reading the source
//
//   - device.go: Config, Device and its life: boot, register, update,
//     sleep, reboot; the Object 5 requests it takes itself.
//   - firmware.go: Object 5's states and results, pull and push transfers,
//     the manifest and precursor checks, the journal that makes them resume.
//   - personality.go: the client stacks (Client) and what differs between
//     them, including when each reports the result of an update.
//   - download.go: the session a pull fetches over (the registration's or
//     one of its own) and the receivers that take a package into flash.
//   - raw.go: the raw clients' image formats (package simulator/rawimage)
//     and their transfer, checked on the header and at the end.
//   - flash.go: the two slots and the boot record.
//   - radio.go: the modem that drops what arrives while it sleeps (PSM).
//   - faults.go: the faults.
package simulator
