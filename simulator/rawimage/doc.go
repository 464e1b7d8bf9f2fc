// Package rawimage builds and checks the vendor firmware formats that real
// devices with third-party LwM2M clients accept. Such devices take their
// vendor's image as the server delivers it, unchanged, and check it
// themselves: the header on the first block, so a wrong file is refused
// before the download goes on, and the digest once the whole image is in.
//
// The simulator's client personalities use these formats to build test
// images and to verify what a simulated device downloaded:
//
//   - zephyr takes an MCUboot image ([MCUboot], [ParseMCUbootHeader],
//     [VerifyMCUboot]), as Zephyr and nRF Connect SDK devices do. It is a
//     subset of the real format: a header, the body and a TLV area holding
//     the SHA-256 of both, without signatures or encryption.
//   - anjay takes a vendor blob ([VendorBlob], [ParseVendorHeader],
//     [VerifyVendorBlob]): a small header naming the version, the payload
//     and a trailing SHA-256, standing for the proprietary wrappers that
//     Anjay-based products check.
//
// Every parser takes hostile input: it bounds-checks each length the input
// declares and answers an error wrapping [ErrFormat], [ErrDigest] or
// [ErrShort], never a panic.
package rawimage
