/*
 * check.h: a small stand-in for the Check unit test framework, for the
 * Windows build (Check is not packaged for MinGW). It provides what the
 * core suites use (START_TEST/END_TEST, suites, test cases, fixtures,
 * runners, loop tests, ck_assert*), with the same meaning, except:
 *  - no fork: every test runs in the one process; a failed assertion in
 *    the test's own thread ends the test (longjmp to the runner), in any
 *    other thread it prints the failure and exits the program;
 *  - timeouts are accepted and ignored;
 *  - tests named in ck_w_skip (set by the driver, tests/win/wintest.c)
 *    are reported as skipped, with the reason given there.
 * The runner prints one line per failed or skipped test and a Check-like
 * summary per suite; ck_w_total_* hold the counts over all suites.
 */
#ifndef MAPKV_WIN_CHECK_H
#define MAPKV_WIN_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct TCase TCase;
typedef struct Suite Suite;
typedef struct SRunner SRunner;
typedef void (*SFun)(void);
typedef void (*TFun)(int);

typedef struct TTest {
	const char *name;
	TFun fn;
	const char *file;
	int line;
} TTest;

enum print_output { CK_SILENT, CK_MINIMAL, CK_NORMAL, CK_VERBOSE };

#define START_TEST(__testname)                                                 \
	static void __testname##_fn(int _i __attribute__((unused)));           \
	static const TTest __testname##_ttest = {#__testname, __testname##_fn, \
						 __FILE__, __LINE__};          \
	static const TTest *__testname = &__testname##_ttest;                  \
	static void __testname##_fn(int _i __attribute__((unused)))
#define END_TEST

Suite *suite_create(const char *name);
void suite_add_tcase(Suite *s, TCase *tc);
TCase *tcase_create(const char *name);
void ck_w_add_test(TCase *tc, const TTest *t, int start, int end);
#define tcase_add_test(tc, tf) ck_w_add_test((tc), (tf), 0, 1)
/* The test runs once for each _i in [start, end), as in Check. */
#define tcase_add_loop_test(tc, tf, s, e) ck_w_add_test((tc), (tf), (s), (e))
void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown);
void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown);
void tcase_set_timeout(TCase *tc, double timeout);
SRunner *srunner_create(Suite *s);
void srunner_run_all(SRunner *sr, enum print_output mode);
int srunner_ntests_failed(SRunner *sr);
void srunner_free(SRunner *sr);

/* Ends the current test as failed. The first variadic argument is a
 * printf format (or NULL: the message is @expr), then its arguments. */
void ck_w_fail(const char *file, int line, const char *expr, ...)
	__attribute__((noreturn));

/* Driver interface. */
typedef struct ck_w_skip_ent {
	const char *test;
	const char *why;
} ck_w_skip_ent;
extern const ck_w_skip_ent *ck_w_skip; /* ends with {NULL, NULL} */
extern unsigned ck_w_total_run, ck_w_total_failed, ck_w_total_skipped;

#define ck_assert_msg(expr, ...)                                               \
	((expr) ? (void)0                                                      \
		: ck_w_fail(__FILE__, __LINE__,                                \
			    "Assertion '" #expr "' failed", ##__VA_ARGS__,     \
			    NULL))
#define ck_assert(expr) ck_assert_msg(expr, NULL)
#define ck_abort_msg(...) ck_w_fail(__FILE__, __LINE__, "abort", __VA_ARGS__)
#define ck_abort() ck_abort_msg(NULL)

#define ck_w_cmp(X, OP, Y, T, FMT)                                             \
	do {                                                                   \
		T ck_x_ = (T)(X);                                              \
		T ck_y_ = (T)(Y);                                              \
		ck_assert_msg(ck_x_ OP ck_y_,                                  \
			      "Assertion '%s' failed: %s == " FMT              \
			      ", %s == " FMT,                                  \
			      #X " " #OP " " #Y, #X, ck_x_, #Y, ck_y_);        \
	} while (0)

#define ck_assert_int_eq(X, Y) ck_w_cmp(X, ==, Y, intmax_t, "%jd")
#define ck_assert_int_ne(X, Y) ck_w_cmp(X, !=, Y, intmax_t, "%jd")
#define ck_assert_int_lt(X, Y) ck_w_cmp(X, <, Y, intmax_t, "%jd")
#define ck_assert_int_le(X, Y) ck_w_cmp(X, <=, Y, intmax_t, "%jd")
#define ck_assert_int_gt(X, Y) ck_w_cmp(X, >, Y, intmax_t, "%jd")
#define ck_assert_int_ge(X, Y) ck_w_cmp(X, >=, Y, intmax_t, "%jd")
#define ck_assert_uint_eq(X, Y) ck_w_cmp(X, ==, Y, uintmax_t, "%ju")
#define ck_assert_uint_ne(X, Y) ck_w_cmp(X, !=, Y, uintmax_t, "%ju")
#define ck_assert_uint_lt(X, Y) ck_w_cmp(X, <, Y, uintmax_t, "%ju")
#define ck_assert_uint_le(X, Y) ck_w_cmp(X, <=, Y, uintmax_t, "%ju")
#define ck_assert_uint_gt(X, Y) ck_w_cmp(X, >, Y, uintmax_t, "%ju")
#define ck_assert_uint_ge(X, Y) ck_w_cmp(X, >=, Y, uintmax_t, "%ju")
#define ck_assert_ptr_eq(X, Y) ck_w_cmp(X, ==, Y, const void *, "%p")
#define ck_assert_ptr_ne(X, Y) ck_w_cmp(X, !=, Y, const void *, "%p")
#define ck_assert_ptr_null(X) ck_assert_ptr_eq(X, NULL)
#define ck_assert_ptr_nonnull(X) ck_assert_ptr_ne(X, NULL)
#define ck_assert_str_eq(X, Y)                                                 \
	do {                                                                   \
		const char *ck_x_ = (X), *ck_y_ = (Y);                         \
		ck_assert_msg(ck_x_ &&ck_y_ &&strcmp(ck_x_, ck_y_) == 0,       \
			      "Assertion '%s' failed: %s == \"%s\", "          \
			      "%s == \"%s\"",                                  \
			      #X " == " #Y, #X, ck_x_ ? ck_x_ : "(null)", #Y,  \
			      ck_y_ ? ck_y_ : "(null)");                       \
	} while (0)
#define ck_assert_str_ne(X, Y)                                                 \
	ck_assert_msg(strcmp((X), (Y)) != 0, "Assertion '%s' failed",          \
		      #X " != " #Y)

#ifdef __cplusplus
}
#endif

#endif /* MAPKV_WIN_CHECK_H */
