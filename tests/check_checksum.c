/*
 * check_checksum.c: CRC-32C against published vectors, against a
 * bit-at-a-time reference, incremental against one-shot, and the SSE4.2
 * path against the table-driven one.
 */
#include "checksum.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Internal symbols of checksum.c (not in checksum.h). */
uint32_t ck_crc32c_sw(uint32_t crc, const void *data, size_t n);
int ck_crc32c_hw_active(void);

/* The definition, one bit at a time: slow, obviously right, and shares no
 * table with the code under test. */
static uint32_t crc_bitwise(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* Deterministic pseudo-random bytes (xorshift64), so failures repeat. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rng() >> 56);
}

/* Each vector is checked through the dispatched entry point and the
 * software one. */
static void check_vector(const void *data, size_t n, uint32_t want)
{
	ck_assert_uint_eq(ck_crc32c(0, data, n), want);
	ck_assert_uint_eq(ck_crc32c_sw(0, data, n), want);
	ck_assert_uint_eq(crc_bitwise(0, data, n), want);
}

START_TEST(test_known_vector_123456789)
{
	check_vector("123456789", 9, 0xE3069283u);
}
END_TEST

/* The RFC 3720 (iSCSI) appendix B.4 vectors. */
START_TEST(test_known_vectors_rfc3720)
{
	unsigned char buf[32];

	memset(buf, 0, sizeof(buf));
	check_vector(buf, sizeof(buf), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	check_vector(buf, sizeof(buf), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	check_vector(buf, sizeof(buf), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	check_vector(buf, sizeof(buf), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_empty_input_leaves_crc_unchanged)
{
	ck_assert_uint_eq(ck_crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(ck_crc32c(0x12345678u, "", 0), 0x12345678u);
	ck_assert_uint_eq(ck_crc32c_sw(0xDEADBEEFu, NULL, 0), 0xDEADBEEFu);
}
END_TEST

/* Every length and alignment around the 8-byte steps, so the head, body
 * and tail loops of both implementations are all exercised. */
START_TEST(test_table_code_matches_bitwise_reference)
{
	static unsigned char buf[4096 + 16];

	fill_random(buf, sizeof(buf));
	for (size_t align = 0; align < 16; align++) {
		for (size_t n = 0; n <= 300; n++) {
			uint32_t want = crc_bitwise(0, buf + align, n);

			ck_assert_uint_eq(ck_crc32c_sw(0, buf + align, n),
					  want);
			ck_assert_uint_eq(ck_crc32c(0, buf + align, n), want);
		}
	}
	ck_assert_uint_eq(ck_crc32c_sw(0, buf, 4096),
			  crc_bitwise(0, buf, 4096));
}
END_TEST

START_TEST(test_incremental_equals_one_shot)
{
	enum { N = 10000 };
	static unsigned char buf[N];

	fill_random(buf, N);
	uint32_t whole = ck_crc32c(0, buf, N);
	ck_assert_uint_eq(whole, ck_crc32c_sw(0, buf, N));

	for (int round = 0; round < 500; round++) {
		uint32_t crc = 0, crc_sw = 0;
		size_t pos = 0;

		/* Cut the buffer at random points, including empty pieces. */
		while (pos < N) {
			size_t piece = (size_t)(rng() % 200);

			if (round % 5 == 0)
				piece = (size_t)(rng() % 9);
			if (piece > N - pos)
				piece = N - pos;
			crc = ck_crc32c(crc, buf + pos, piece);
			crc_sw = ck_crc32c_sw(crc_sw, buf + pos, piece);
			pos += piece;
		}
		ck_assert_uint_eq(crc, whole);
		ck_assert_uint_eq(crc_sw, whole);
	}
}
END_TEST

START_TEST(test_hardware_path_equals_software_path)
{
	enum { N = 1 << 16 };
	unsigned char *buf = malloc(N + 64);

	ck_assert_ptr_nonnull(buf);
	fprintf(stderr, "check_checksum: SSE4.2 path %s\n",
		ck_crc32c_hw_active() ? "in use"
				      : "not available (software only)");
	fill_random(buf, N + 64);
	for (int round = 0; round < 2000; round++) {
		size_t off = (size_t)(rng() % 64);
		size_t n = (size_t)(rng() % (round < 1000 ? 100 : N));
		uint32_t seed = (uint32_t)rng();

		ck_assert_uint_eq(ck_crc32c(seed, buf + off, n),
				  ck_crc32c_sw(seed, buf + off, n));
	}
	free(buf);
}
END_TEST

/* A checksum that misses a single flipped bit is useless for meta pages. */
START_TEST(test_every_single_bit_flip_changes_crc)
{
	unsigned char page[512];

	fill_random(page, sizeof(page));
	uint32_t base = ck_crc32c(0, page, sizeof(page));
	for (size_t bit = 0; bit < sizeof(page) * 8; bit++) {
		page[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		ck_assert_uint_ne(ck_crc32c(0, page, sizeof(page)), base);
		page[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
}
END_TEST

static Suite *checksum_suite(void)
{
	Suite *s = suite_create("checksum");
	TCase *tc = tcase_create("crc32c");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_known_vector_123456789);
	tcase_add_test(tc, test_known_vectors_rfc3720);
	tcase_add_test(tc, test_empty_input_leaves_crc_unchanged);
	tcase_add_test(tc, test_table_code_matches_bitwise_reference);
	tcase_add_test(tc, test_incremental_equals_one_shot);
	tcase_add_test(tc, test_hardware_path_equals_software_path);
	tcase_add_test(tc, test_every_single_bit_flip_changes_crc);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(checksum_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? 1 : 0;
}
