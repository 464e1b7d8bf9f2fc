/*
 * fdapply - host test driver for the C delta applier.
 *
 *   fdapply [-r N] OLD PATCH OUT [CHUNK]
 *   fdapply -b < JOBS
 *   fdapply --sizeof
 *
 * Applies PATCH to OLD and writes the new image to OUT, feeding the patch
 * in chunks of CHUNK bytes (default 1). With -r N, every N chunks the
 * applier state is saved (the first FD_SAVE_SIZE bytes of the struct),
 * restored into the other of two zeroed structs, re-bound with fd_rebind,
 * and the patch is fed on from fd_patch_offset(), as a device resuming
 * after a power loss does. With -b it runs many such jobs, one per line of
 * standard input ("OLD PATCH OUT CHUNK N", N = 0 for no save/restore), and
 * prints one result line for each: "OK", "ERR FD_E_...", or "HOST".
 *
 * Exit status: 0 the new image is complete and verified; 1 the applier
 * refused the patch (its error name is printed); 2 usage or host file
 * error. A broken applier contract (a read outside the old image, a write
 * past the header's new_size, inconsistent offsets after a restore) aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdelta.h"

struct io {
	const uint8_t *old;
	uint32_t old_size;
	FILE *out;
	uint64_t written;
	uint64_t limit; /* new_size from the patch header (if present) */
};

static int read_old(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
	struct io *io = ctx;
	if ((uint64_t)offset + len > io->old_size || len == 0) {
		fprintf(stderr, "fdapply: read of %u bytes at %u outside the %u-byte old image\n",
			(unsigned)len, (unsigned)offset, (unsigned)io->old_size);
		abort();
	}
	memcpy(buf, io->old + offset, len);
	return 0;
}

static int write_new(void *ctx, const uint8_t *buf, uint32_t len)
{
	struct io *io = ctx;
	io->written += len;
	if (io->written > io->limit) {
		fprintf(stderr, "fdapply: wrote %llu bytes, header declares %llu\n",
			(unsigned long long)io->written, (unsigned long long)io->limit);
		abort();
	}
	return fwrite(buf, 1, len, io->out) == len ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	size_t cap = 0, len = 0;
	if (!f)
		return NULL;
	for (;;) {
		size_t k;
		if (len == cap) {
			uint8_t *nb;
			cap = cap ? 2 * cap : 65536;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				fclose(f);
				return NULL;
			}
			b = nb;
		}
		k = fread(b + len, 1, cap - len, f);
		len += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(b);
		fclose(f);
		return NULL;
	}
	fclose(f);
	if (len > 0) { /* exactly its size, for AddressSanitizer */
		uint8_t *nb = realloc(b, len);
		if (nb)
			b = nb;
	}
	*n = len;
	return b;
}

static int usage(void)
{
	fprintf(stderr, "usage: fdapply [-r N] OLD PATCH OUT [CHUNK]\n"
			"       fdapply -b < JOBS   (lines: OLD PATCH OUT CHUNK N; N 0: no save/restore)\n"
			"       fdapply --sizeof\n");
	return 2;
}

/* Two appliers on the heap, each exactly its size (AddressSanitizer
 * catches an access past the end), and a buffer for the saved state. */
static fd_applier *appliers[2];
static uint8_t saved[sizeof(fd_applier)];

/* apply runs one job. It returns 0 (the new image is verified), 1 (the
 * applier refused the patch: *err says why) or 2 (host file error). */
static int apply(const char *old_path, const char *patch_path, const char *out_path,
		 unsigned long chunk, unsigned long every, int *errp)
{
	struct io io;
	unsigned long count = 0;
	size_t old_len = 0, patch_len = 0, off = 0;
	uint8_t *old, *patch;
	fd_applier *a = appliers[0];
	int err = FD_OK, status = 0;

	old = slurp(old_path, &old_len);
	patch = slurp(patch_path, &patch_len);
	if (!old || !patch || old_len > 0xFFFFFFFFu) {
		fprintf(stderr, "fdapply: cannot read %s or %s\n", old_path, patch_path);
		free(old);
		free(patch);
		return 2;
	}
	memset(&io, 0, sizeof io);
	io.old = old;
	io.old_size = (uint32_t)old_len;
	io.limit = 0;
	if (patch_len >= 16)
		io.limit = (uint64_t)patch[12] | (uint64_t)patch[13] << 8 |
			   (uint64_t)patch[14] << 16 | (uint64_t)patch[15] << 24;
	io.out = fopen(out_path, "wb");
	if (!io.out) {
		fprintf(stderr, "fdapply: cannot create %s\n", out_path);
		free(old);
		free(patch);
		return 2;
	}

	fd_init(a, io.old_size, read_old, write_new, &io);
	while (off < patch_len) {
		size_t n = patch_len - off < chunk ? patch_len - off : chunk;
		/* Each chunk in a buffer of its own size, so that AddressSanitizer
		 * catches a read past its end. */
		uint8_t *buf = malloc(n);
		if (!buf) {
			fprintf(stderr, "fdapply: out of memory\n");
			abort();
		}
		memcpy(buf, patch + off, n);
		err = fd_write(a, buf, n);
		free(buf);
		if (err != FD_OK)
			break;
		off += n;
		if (every && ++count % every == 0) {
			fd_applier *b = a == appliers[0] ? appliers[1] : appliers[0];
			memcpy(saved, a, FD_SAVE_SIZE);
			memset(a, 0xA5, sizeof *a); /* the old one is gone */
			memset(b, 0, sizeof *b);
			memcpy(b, saved, FD_SAVE_SIZE);
			a = b;
			if ((err = fd_rebind(a, read_old, write_new, &io)) != FD_OK)
				break;
			if (fd_patch_offset(a) != off || fd_new_written(a) != io.written) {
				fprintf(stderr, "fdapply: restored state at patch %u / new %u, fed %llu / wrote %llu\n",
					(unsigned)fd_patch_offset(a), (unsigned)fd_new_written(a),
					(unsigned long long)off, (unsigned long long)io.written);
				abort();
			}
			off = fd_patch_offset(a);
		}
	}
	if (err == FD_OK)
		err = fd_finish(a);
	if (fclose(io.out) != 0 && err == FD_OK) {
		fprintf(stderr, "fdapply: cannot write %s\n", out_path);
		status = 2;
	}
	if (err != FD_OK) {
		fprintf(stderr, "fdapply: %s at patch offset %u, %u new bytes written\n",
			fd_error_name(err), (unsigned)fd_patch_offset(a), (unsigned)fd_new_written(a));
		status = 1;
	}
	*errp = err;
	free(old);
	free(patch);
	return status;
}

/* batch runs jobs read from stdin, one a line, and prints for each
 * "OK", or "ERR <name>", or "HOST" (file error), flushing after each so
 * that a crash shows which job caused it. */
static int batch(void)
{
	char line[3 * 4096 + 64], o[4096], p[4096], w[4096];
	unsigned long chunk, every;

	while (fgets(line, sizeof line, stdin)) {
		int err = FD_OK, st;
		if (sscanf(line, "%4095s %4095s %4095s %lu %lu", o, p, w, &chunk, &every) != 5 || chunk == 0)
			return usage();
		st = apply(o, p, w, chunk, every, &err);
		if (st == 0)
			printf("OK\n");
		else if (st == 1)
			printf("ERR %s\n", fd_error_name(err));
		else
			printf("HOST\n");
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long chunk = 1, every = 0;
	int argi = 1, err = FD_OK;

	if (argc == 2 && strcmp(argv[1], "--sizeof") == 0) {
		printf("sizeof(fd_applier) %u\nFD_SAVE_SIZE %u\nFD_RAM_BOUND %u\n",
		       (unsigned)sizeof(fd_applier), (unsigned)FD_SAVE_SIZE, (unsigned)FD_RAM_BOUND);
		return 0;
	}
	appliers[0] = malloc(sizeof(fd_applier));
	appliers[1] = malloc(sizeof(fd_applier));
	if (!appliers[0] || !appliers[1]) {
		fprintf(stderr, "fdapply: out of memory\n");
		return 2;
	}
	if (argc == 2 && strcmp(argv[1], "-b") == 0)
		return batch();
	if (argc > 2 && strcmp(argv[1], "-r") == 0) {
		char *end;
		every = strtoul(argv[2], &end, 10);
		if (*end != '\0' || every == 0)
			return usage();
		argi = 3;
	}
	if (argc - argi != 3 && argc - argi != 4)
		return usage();
	if (argc - argi == 4) {
		char *end;
		chunk = strtoul(argv[argi + 3], &end, 10);
		if (*end != '\0' || chunk == 0)
			return usage();
	}
	return apply(argv[argi], argv[argi + 1], argv[argi + 2], chunk, every, &err);
}
