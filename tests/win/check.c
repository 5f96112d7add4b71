/*
 * check.c: the Check stand-in of the Windows build (see check.h).
 */
#include "check.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>

typedef struct ck_w_ent {
	const TTest *t;
	int start, end; /* _i runs over [start, end) */
} ck_w_ent;

struct TCase {
	const char *name;
	ck_w_ent *tests;
	unsigned n, cap;
	SFun u_setup, u_teardown, c_setup, c_teardown;
	TCase *next;
};

struct Suite {
	const char *name;
	TCase *first, *last;
};

struct SRunner {
	Suite *s;
	unsigned run, failed, skipped;
};

const ck_w_skip_ent *ck_w_skip;
unsigned ck_w_total_run, ck_w_total_failed, ck_w_total_skipped;

static jmp_buf ck_jmp;
static int ck_in_test;
static pthread_t ck_main;
static char ck_msg[2048];

static void *xalloc(size_t n)
{
	void *p = calloc(1, n);

	if (p == NULL) {
		fprintf(stderr, "check shim: out of memory\n");
		exit(2);
	}
	return p;
}

Suite *suite_create(const char *name)
{
	Suite *s = xalloc(sizeof(*s));

	s->name = name;
	return s;
}

void suite_add_tcase(Suite *s, TCase *tc)
{
	if (s->last)
		s->last->next = tc;
	else
		s->first = tc;
	s->last = tc;
}

TCase *tcase_create(const char *name)
{
	TCase *tc = xalloc(sizeof(*tc));

	tc->name = name;
	return tc;
}

void ck_w_add_test(TCase *tc, const TTest *t, int start, int end)
{
	if (tc->n == tc->cap) {
		tc->cap = tc->cap ? 2 * tc->cap : 16;
		tc->tests = realloc(tc->tests, tc->cap * sizeof(*tc->tests));
		if (tc->tests == NULL) {
			fprintf(stderr, "check shim: out of memory\n");
			exit(2);
		}
	}
	tc->tests[tc->n].t = t;
	tc->tests[tc->n].start = start;
	tc->tests[tc->n].end = end;
	tc->n++;
}

void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown)
{
	tc->u_setup = setup;
	tc->u_teardown = teardown;
}

void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown)
{
	tc->c_setup = setup;
	tc->c_teardown = teardown;
}

void tcase_set_timeout(TCase *tc, double timeout)
{
	(void)tc;
	(void)timeout;
}

SRunner *srunner_create(Suite *s)
{
	SRunner *sr = xalloc(sizeof(*sr));

	sr->s = s;
	return sr;
}

void ck_w_fail(const char *file, int line, const char *expr, ...)
{
	va_list ap;
	const char *fmt;
	char text[1800];

	va_start(ap, expr);
	fmt = va_arg(ap, const char *);
	if (fmt != NULL)
		vsnprintf(text, sizeof(text), fmt, ap);
	else
		snprintf(text, sizeof(text), "%s", expr);
	va_end(ap);
	snprintf(ck_msg, sizeof(ck_msg), "%s:%d: %s", file, line, text);
	if (!ck_in_test || !pthread_equal(pthread_self(), ck_main)) {
		fprintf(stderr, "%s (outside the test's thread: exiting)\n",
			ck_msg);
		fflush(NULL);
		exit(1);
	}
	longjmp(ck_jmp, 1);
}

static const char *skip_reason(const char *name)
{
	for (const ck_w_skip_ent *e = ck_w_skip; e && e->test; e++)
		if (strcmp(e->test, name) == 0)
			return e->why;
	return NULL;
}

/* One test (iteration @i of a loop test) with its checked fixture; 1 if
 * it failed. */
static int run_test(TCase *tc, const TTest *t, int i)
{
	volatile int failed = 0;

	ck_in_test = 1;
	if (setjmp(ck_jmp) == 0) {
		if (tc->c_setup)
			tc->c_setup();
		t->fn(i);
	} else {
		failed = 1;
	}
	ck_in_test = 0;
	if (tc->c_teardown)
		tc->c_teardown();
	return failed;
}

void srunner_run_all(SRunner *sr, enum print_output mode)
{
	Suite *s = sr->s;

	(void)mode;
	ck_main = pthread_self();
	printf("Running suite(s): %s\n", s->name);
	fflush(stdout);
	for (TCase *tc = s->first; tc; tc = tc->next) {
		if (tc->u_setup)
			tc->u_setup();
		for (unsigned i = 0; i < tc->n; i++) {
			const TTest *t = tc->tests[i].t;
			const char *why = skip_reason(t->name);

			if (why != NULL) {
				printf("%s:%d:S:%s:%s: skipped on Windows: "
				       "%s\n",
				       t->file, t->line, tc->name, t->name,
				       why);
				sr->skipped++;
				continue;
			}
			for (int it = tc->tests[i].start; it < tc->tests[i].end;
			     it++) {
				sr->run++;
				if (run_test(tc, t, it)) {
					sr->failed++;
					printf("%s:F:%s:%s:%d: %s\n", t->file,
					       tc->name, t->name, it, ck_msg);
				} else if (getenv("CK_VERBOSE")) {
					printf("%s:P:%s:%s:%d: Passed\n",
					       t->file, tc->name, t->name, it);
				}
				fflush(stdout);
			}
		}
		if (tc->u_teardown)
			tc->u_teardown();
	}
	printf("%u%%: Checks: %u, Failures: %u, Errors: 0 (skipped: %u)\n",
	       sr->run ? 100 * (sr->run - sr->failed) / sr->run : 100, sr->run,
	       sr->failed, sr->skipped);
	fflush(stdout);
	ck_w_total_run += sr->run;
	ck_w_total_failed += sr->failed;
	ck_w_total_skipped += sr->skipped;
}

int srunner_ntests_failed(SRunner *sr)
{
	return (int)sr->failed;
}

void srunner_free(SRunner *sr)
{
	Suite *s = sr->s;
	TCase *tc = s->first;

	while (tc) {
		TCase *n = tc->next;

		free(tc->tests);
		free(tc);
		tc = n;
	}
	free(s);
	free(sr);
}
