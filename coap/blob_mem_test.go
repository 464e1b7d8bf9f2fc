package coap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestBlobDownloadMemory measures the heap a download holds on the server,
// half-way and once completed while the device's session stays open, the
// way a firmware image used to be served (a Handler whose response
// go-coap cuts into blocks, and whose every block go-coap's duplicate cache
// keeps for EXCHANGE_LIFETIME) and the way Publish serves it. Run with -v
// for the figures; docs/transport.md quotes them.
func TestBlobDownloadMemory(t *testing.T) {
	const (
		imageSize = 380 << 10
		downloads = 8
	)
	image := testImage(imageSize)
	want := sha256.Sum256(image)
	etag := BytesBlob(image).ETag()

	// measure runs the downloads concurrently, each in its own session,
	// and returns the heap per download half-way (every download paused
	// at the middle block) and after all completed.
	measure := func(t *testing.T, s *Server, path string, blockSize int) (during, after int64) {
		clients := make([]*ClientConn, downloads)
		for i := range clients {
			clients[i] = blockClient(t, s, "dev-1")
			get(t, clients[i], "/warm-up") // the session's own buffers are not the download's
		}
		half := uint32(imageSize / blockSize / 2)
		var atHalf, done sync.WaitGroup
		resume := make(chan struct{})
		before := liveHeap()
		for _, c := range clients {
			atHalf.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				h := sha256.New()
				for num := uint32(0); ; num++ {
					if num == half {
						atHalf.Done()
						<-resume
					}
					resp := fetch(t, c, path, Block{Num: num, Size: blockSize}, false)
					if resp.Code != Content || !bytes.Equal(resp.ETag, etag) {
						t.Errorf("block %d: %v", num, resp.Code)
						return
					}
					h.Write(resp.Payload)
					if !resp.Block2.More {
						break
					}
				}
				if !bytes.Equal(h.Sum(nil), want[:]) {
					t.Error("downloaded image differs")
				}
			}()
		}
		atHalf.Wait()
		during = (liveHeap() - before) / downloads
		close(resume)
		done.Wait()
		after = (liveHeap() - before) / downloads
		t.Logf("%d concurrent downloads of %d KB at %d-byte blocks, per download: %d bytes half-way, "+
			"%d bytes (%.2fx the image) after completion, sessions open",
			downloads, imageSize>>10, blockSize, during, after, float64(after)/imageSize)
		runtime.KeepAlive(clients)
		return during, after
	}

	for _, blockSize := range []int{512, 1024} {
		t.Run(fmt.Sprintf("handler/%d", blockSize), func(t *testing.T) {
			s := startServer(t, func(c *Config) {
				c.Handler = HandlerFunc(func(ctx context.Context, r *Request) Response {
					if r.Path != "/img" {
						return whoami.ServeCoAP(ctx, r)
					}
					return Response{Code: Content, ContentFormat: octetStream, Payload: image, ETag: etag, Size2: imageSize}
				})
			})
			measure(t, s, "/img", blockSize)
		})
		t.Run(fmt.Sprintf("publish/%d", blockSize), func(t *testing.T) {
			s := startServer(t, nil)
			path, err := s.Publish(dev1, BytesBlob(image), PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			during, after := measure(t, s, path, blockSize)
			if during > 64<<10 || after > 64<<10 {
				t.Fatalf("%d KB half-way and %d KB after per download, want under 64 KB", during>>10, after>>10)
			}
		})
	}
}

// liveHeap is the heap in use after collections have run to a fixed point
// (sync.Pool contents survive one collection).
func liveHeap() int64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
