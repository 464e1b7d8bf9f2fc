// Package delta makes and applies binary patches between firmware images in
// a format a microcontroller applies as a stream in a few KB of RAM
// (docs/delta-format.md specifies it byte by byte).
//
// The generator finds bsdiff-style approximate matches over a suffix array
// of the old image (sais.go, match.go) and codes the whole patch as one
// adaptive binary range-coded stream (rangecoder.go, model.go): no window,
// no dictionary, only a few KB of probabilities. The applier (apply.go)
// takes patch bytes in chunks of any size, reads the old image with seeks,
// writes the new image strictly in order, and can save and restore its
// state so that an interrupted download or apply resumes.
package delta
