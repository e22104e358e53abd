/* A C client of libviacodec.so: decodes a message into a skeleton and
 * slots, fills the slots into its own memory, encodes the skeleton and
 * slots back and checks that the bytes are the message's. Built and run by
 * test_ffi.py::test_c_client with each golden file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libviacodec.h"

static int fail(const char* what, int32_t status, vc_error* err) {
	fprintf(stderr, "%s: status %d (%s): %s (offset %lld)\n", what, status, vc_kind_name(status),
	        err->msg ? err->msg : "", (long long)err->offset);
	vc_free(err->msg);
	return 1;
}

int main(int argc, char** argv) {
	if (argc != 2) return 2;
	FILE* f = fopen(argv[1], "rb");
	if (!f) return 2;
	static uint8_t msg[1 << 20];
	size_t n = fread(msg, 1, sizeof msg, f);
	fclose(f);

	vc_error err;
	int64_t dh;
	uint8_t* skel;
	uint64_t skel_len;
	vc_slot* specs;
	int64_t nslots;
	int32_t st = vc_decode(msg, n, NULL, &dh, &skel, &skel_len, &specs, &nslots, &err);
	if (st) return fail("vc_decode", st, &err);

	/* Our own memory for every slot, described by our own descriptors. */
	vc_slot* mine = calloc(nslots ? nslots : 1, sizeof(vc_slot));
	for (int64_t i = 0; i < nslots; i++) {
		mine[i] = specs[i];
		mine[i].data = malloc(specs[i].nbytes ? specs[i].nbytes : 1);
	}
	if ((st = vc_decode_fill(dh, mine, nslots, &err))) return fail("vc_decode_fill", st, &err);
	/* The skeleton belongs to the decode handle: copy it before release. */
	uint8_t* skel_copy = malloc(skel_len);
	memcpy(skel_copy, skel, skel_len);
	int64_t* shapes[64];
	for (int64_t i = 0; i < nslots && i < 64; i++) {
		shapes[i] = malloc(sizeof(int64_t) * (specs[i].ndim ? specs[i].ndim : 1));
		memcpy(shapes[i], specs[i].shape, sizeof(int64_t) * specs[i].ndim);
		mine[i].shape = shapes[i];
	}
	if ((st = vc_release(dh, &err))) return fail("vc_release", st, &err);

	int64_t mh;
	uint64_t size;
	if ((st = vc_encode(skel_copy, skel_len, mine, nslots, NULL, &mh, &size, &err))) return fail("vc_encode", st, &err);
	uint8_t* out = malloc(size);
	if ((st = vc_message_copy(mh, out, size, &err))) return fail("vc_message_copy", st, &err);
	if ((st = vc_release(mh, &err))) return fail("vc_release", st, &err);
	if (size != n || memcmp(out, msg, n) != 0) {
		fprintf(stderr, "re-encoded message differs\n");
		return 1;
	}
	uint8_t* out2;
	uint64_t size2;
	if ((st = vc_marshal(skel_copy, skel_len, mine, nslots, NULL, &out2, &size2, &err))) return fail("vc_marshal", st, &err);
	if (size2 != n || memcmp(out2, msg, n) != 0) {
		fprintf(stderr, "vc_marshal differs\n");
		return 1;
	}
	vc_free(out2);

	/* Misuse is an error, never a crash. */
	st = vc_release(mh, &err);
	if (st != 1 || err.msg == NULL) return 1;
	vc_free(err.msg);
	if (vc_release(-5, NULL) != 1) return 1;
	if (vc_handle_count() != 0) return 1;
	for (int64_t i = 0; i < nslots && i < 64; i++) {
		free(mine[i].data);
		free(shapes[i]);
	}
	free(mine);
	free(skel_copy);
	free(out);
	printf("ok %s %lld slots, version %s, abi %d\n", argv[1], (long long)nslots, vc_version(), vc_abi_version());
	return 0;
}
