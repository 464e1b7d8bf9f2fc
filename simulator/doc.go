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
//   - flash.go: the two slots and the boot record.
//   - radio.go: the modem that drops what arrives while it sleeps (PSM).
//   - faults.go: the faults.
package simulator
