package coap

// DTLS 1.2 record-layer constants (RFC 6347 §4.1, RFC 9146).
const (
	recordHeaderLen        = 13 // type, version, epoch, sequence number, length
	contentHandshake       = 22
	contentApplicationData = 23
	contentTLS12CID        = 25
	handshakeClientHello   = 1
)

// recordEpoch returns the epoch of the first record in d.
func recordEpoch(d []byte) uint16 { return uint16(d[3])<<8 | uint16(d[4]) }

// isClientHello reports whether the datagram starts with an unencrypted
// ClientHello: the first message of every new handshake.
func isClientHello(d []byte) bool {
	return len(d) > recordHeaderLen && d[0] == contentHandshake &&
		recordEpoch(d) == 0 && d[recordHeaderLen] == handshakeClientHello
}

// recordCID returns the Connection ID of a tls12_cid record, whose header
// carries it between the sequence number and the length (RFC 9146 §4).
func recordCID(d []byte, cidLen int) ([]byte, bool) {
	const cidOffset = 11
	if cidLen == 0 || len(d) < cidOffset+cidLen+2 || d[0] != contentTLS12CID {
		return nil, false
	}
	return d[cidOffset : cidOffset+cidLen], true
}

// normalizeHelloVersion rewrites a ClientHello's record-layer version to
// DTLS 1.0 when it holds a value pion rejects. mbedTLS 2.x sends 0xfe00 in
// the record header of its first ClientHello; RFC 6347 §4.1 tells servers
// not to judge the initial ClientHello by it, and the record header is not
// part of the handshake transcript, so the rewrite changes nothing else.
func normalizeHelloVersion(d []byte) {
	if !isClientHello(d) {
		return
	}
	if d[1] == 0xfe && (d[2] == 0xfd || d[2] == 0xff) {
		return
	}
	d[1], d[2] = 0xfe, 0xff
}
