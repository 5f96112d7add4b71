/*
 * output.c: how the shell prints keys, values and errors.
 *
 * Keys and values are arbitrary bytes, so each mode has a rule that keeps
 * them unambiguous:
 *   text  printable ASCII and valid UTF-8 as they are; backslash, tab,
 *         newline and CR as \\ \t \n \r; other bytes as \xHH. A pair is
 *         key TAB value, so a tab in the data can never split a line.
 *   hex   lower-case hex digits, key TAB value.
 *   csv   RFC 4180 fields (quoted when they hold , " CR LF or blanks at
 *         an end), bytes unchanged.
 *   json  one object per line; a string that is not valid UTF-8 cannot be
 *         a JSON string, so it goes out as "<name>_hex" instead.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "shell.h"

volatile int sh_interrupted;

void sh_error(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	fflush(sh->out); /* keep results and errors in order on a tty */
	if (sh->interactive || !sh->line)
		fputs("error: ", stderr);
	else if (sh->input)
		fprintf(stderr, "error: %s:%u: ", sh->input, sh->line);
	else
		fprintf(stderr, "error: line %u: ", sh->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	sh->errors++;
}

void sh_error_rc(struct shell *sh, int rc, const char *what)
{
	int e = errno;

	if (rc == MAPKV_IO && e)
		sh_error(sh, "%s: %s (%s)", what, mapkv_strerror(rc),
			 strerror(e));
	else
		sh_error(sh, "%s: %s", what, mapkv_strerror(rc));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0; *cp gets the code
 * point. Overlong forms, surrogates and values past U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n, unsigned *cp)
{
	unsigned c = p[0], v, min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0, l;
	unsigned cp;

	while (i < n) {
		l = utf8_seq(p + i, n - i, &cp);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

void out_text(FILE *f, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0, l;
	unsigned cp;

	while (i < n) {
		unsigned char c = p[i];

		if (c == '\\') {
			fputs("\\\\", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c >= 0x20 && c < 0x7f) {
			fputc(c, f);
		} else if (c >= 0x80 && (l = utf8_seq(p + i, n - i, &cp)) &&
			   cp >= 0xa0) {
			/* printable UTF-8 (C1 controls are escaped) */
			fwrite(p + i, 1, l, f);
			i += l;
			continue;
		} else {
			fprintf(f, "\\x%02x", c);
		}
		i++;
	}
}

void out_hex(FILE *f, const void *data, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < n; i++) {
		fputc(digits[p[i] >> 4], f);
		fputc(digits[p[i] & 15], f);
	}
}

void out_csv(FILE *f, const void *data, size_t n)
{
	const unsigned char *p = data;
	int quote = n > 0 && (p[0] == ' ' || p[n - 1] == ' ');
	size_t i;

	for (i = 0; i < n && !quote; i++)
		if (p[i] == ',' || p[i] == '"' || p[i] == '\n' || p[i] == '\r')
			quote = 1;
	if (!quote) {
		fwrite(p, 1, n, f);
		return;
	}
	fputc('"', f);
	for (i = 0; i < n; i++) {
		if (p[i] == '"')
			fputc('"', f);
		fputc(p[i], f);
	}
	fputc('"', f);
}

static void json_string(FILE *f, const unsigned char *p, size_t n)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

void out_json_member(FILE *f, const char *name, const void *data, size_t n)
{
	if (utf8_valid(data, n)) {
		fprintf(f, "\"%s\":", name);
		json_string(f, data, n);
	} else {
		fprintf(f, "\"%s_hex\":\"", name);
		out_hex(f, data, n);
		fputc('"', f);
	}
}

/* One datum in the current mode (text, hex or csv). */
static void out_datum(struct shell *sh, const void *p, size_t n)
{
	switch (sh->mode) {
	case MODE_HEX:
		out_hex(sh->out, p, n);
		break;
	case MODE_CSV:
		out_csv(sh->out, p, n);
		break;
	default:
		out_text(sh->out, p, n);
	}
}

void out_value(struct shell *sh, const mapkv_val *key, const mapkv_val *val)
{
	if (sh->mode == MODE_JSON) {
		fputc('{', sh->out);
		out_json_member(sh->out, "key", key->data, key->size);
		fputc(',', sh->out);
		out_json_member(sh->out, "value", val->data, val->size);
		fputs("}\n", sh->out);
		return;
	}
	out_datum(sh, val->data, val->size);
	fputc('\n', sh->out);
}

void out_pair(struct shell *sh, const mapkv_val *key, const mapkv_val *val)
{
	if (sh->mode == MODE_JSON) {
		out_value(sh, key, val);
		return;
	}
	out_datum(sh, key->data, key->size);
	fputc(sh->mode == MODE_CSV ? ',' : '\t', sh->out);
	out_datum(sh, val->data, val->size);
	fputc('\n', sh->out);
}

void out_name(struct shell *sh, const char *name)
{
	if (sh->mode == MODE_JSON) {
		fputc('{', sh->out);
		out_json_member(sh->out, "tree", name, strlen(name));
		fputs("}\n", sh->out);
		return;
	}
	out_datum(sh, name, strlen(name));
	fputc('\n', sh->out);
}

void out_number(struct shell *sh, const char *name, uint64_t n)
{
	if (sh->mode == MODE_JSON)
		fprintf(sh->out, "{\"%s\":%llu}\n", name,
			(unsigned long long)n);
	else
		fprintf(sh->out, "%llu\n", (unsigned long long)n);
}

void out_exists(struct shell *sh, const mapkv_val *key, int yes)
{
	if (sh->mode == MODE_JSON) {
		fputc('{', sh->out);
		out_json_member(sh->out, "key", key->data, key->size);
		fprintf(sh->out, ",\"exists\":%s}\n", yes ? "true" : "false");
		return;
	}
	fprintf(sh->out, "%d\n", yes);
}

double sh_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const struct shell *sh,
		    const char *what)
{
	p->on = sh->progress;
	p->start = p->on ? sh_now() : 0;
	p->last = 0;
	p->what = what;
}

/* Cheap enough to call per entry: the clock is read every 4096 calls,
 * and nothing shows during the first second, so quick commands stay
 * silent. */
void progress_tick(struct progress *p, uint64_t n)
{
	double t;

	if (!p->on || (n & 4095) != 0)
		return;
	t = sh_now();
	if (t - p->start < 1.0 || t - p->last < 0.25)
		return;
	fprintf(stderr, "\r%s: %llu entries...", p->what,
		(unsigned long long)n);
	p->last = t;
}

void progress_end(struct progress *p)
{
	if (p->on && p->last > 0)
		fputs("\r\033[K", stderr);
	p->last = 0;
}
