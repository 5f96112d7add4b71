/*
 * checksum.h: CRC-32C (Castagnoli), the checksum of meta pages.
 *
 * Chosen because it detects every burst error up to 32 bits and all odd
 * numbers of bit flips, and because a future build can use the SSE4.2 /
 * ARMv8 instruction for it without changing the format.
 */
#ifndef MAPKV_CHECKSUM_H
#define MAPKV_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over n bytes; start with crc = 0. The result of
 * ck_crc32c(0, "123456789", 9) is 0xE3069283. */
uint32_t ck_crc32c(uint32_t crc, const void *data, size_t n);

#endif
