// Package link emulates cellular links in user space: per-direction rate,
// queueing, one-way delay, jitter, random and bursty loss, MTU and outages,
// plus radio-connected time for energy estimates.
//
// The machines this project runs on have no netem qdisc, so delay and loss
// are applied by this package instead of the kernel. It has three layers:
//
//   - [Profile] and [Params] describe a link. Built-in profiles (wifi,
//     catm1, catm1-typical, nbiot, nbiot-ce1, nbiot-ce2) follow the table in
//     the shared links reference; [LoadProfiles] reads custom ones from YAML.
//   - [Pipe] is one direction of a link and [Link] owns the two directions.
//     They are pure and deterministic: [Pipe.Send] takes the time a packet
//     is sent and its UDP payload size and answers when it is delivered, or
//     that it is dropped, from a seeded random source. No wall clock is read,
//     so tests and virtual-time simulations drive them with synthetic times.
//   - [Relay] puts a Link in front of a real UDP server on loopback: a
//     device sends to [Relay.Addr] and the relay forwards in real time.
//     [Relay.Rebind] emulates a NAT rebinding and [Relay.Outage] a loss of
//     coverage.
//
// # Model
//
// A packet offered to a Pipe goes through these steps, in order:
//
//  1. Outage: a packet sent inside an outage window of its Link is dropped.
//  2. MTU: an IP packet (UDP payload + [IPv4Overhead]) larger than the MTU
//     is dropped.
//  3. Queue: the link serializes packets one at a time, FIFO, at Rate bit/s.
//     The bytes still waiting when a packet arrives (the unsent part of the
//     packet on the air included) plus the packet itself must fit in
//     QueueBytes, or the packet is dropped (drop-tail). A packet that finds
//     the link idle is always accepted.
//  4. Air: the packet occupies the link for size*8/Rate from the moment the
//     previous one is done. Only from here on does it cost air time and
//     keep the radio connected.
//  5. Loss: the Gilbert-Elliott burst model moves its state once per packet
//     on the air and may drop it; then independent random loss may drop it.
//     A lost packet still used its air time.
//  6. Delay: a delivered packet arrives Delay after it left the air, give or
//     take a uniform jitter in [-Jitter, +Jitter]. Unless Reorder is set, a
//     packet is never delivered before the one sent before it (it is held
//     back to the previous delivery time instead), so jitter does not
//     reorder.
//
// Radio-connected time is the union over both directions of
// [air start, air end + RRC inactivity]: the radio stays connected for the
// inactivity timer after the last packet either way. [EnergyJoules] turns it
// into a first-order energy estimate.
package link
