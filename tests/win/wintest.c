/*
 * wintest.c: the Windows test program (make check-windows runs it under
 * Wine). It runs the core Check suites (check_api, check_txn,
 * check_cursor, check_dbi, check_btree: the same sources as on Linux,
 * built with the Check stand-in in tests/win/check.h), the Windows suite
 * (check_win.c), and the cross-platform file check (xfile.c):
 *
 *   MAPKV_XFILE_IN=FILE   a database written by the Linux build: verify it
 *   MAPKV_XFILE_OUT=FILE  write the same data set here, for Linux to verify
 *   WINTEST_ONLY=SUITE    run only that suite (api, txn, ..., win)
 *   wintest.exe --child ...  a second process for check_win.c
 *
 * Exit status 0 when every test passed. A few tests are skipped, each with
 * its reason (printed): they check POSIX behaviour that Windows does not
 * have.
 */
#include "check.h"
#include "xfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wintest_api_main(void);
int wintest_txn_main(void);
int wintest_cursor_main(void);
int wintest_dbi_main(void);
int wintest_btree_main(void);
int wintest_win_main(void);
#ifdef _WIN32
int wintest_child(int argc, char **argv);
extern const char *wintest_exe;
#endif

static const ck_w_skip_ent skips[] = {
	{"test_new_file_gets_requested_mode",
	 "Unix permission bits (umask, mode 0600/0644) do not exist; files "
	 "get the folder's ACL"},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(void);
	} suites[] = {
		{"api", wintest_api_main},       {"txn", wintest_txn_main},
		{"cursor", wintest_cursor_main}, {"dbi", wintest_dbi_main},
		{"btree", wintest_btree_main},   {"win", wintest_win_main},
	};
	const char *only = getenv("WINTEST_ONLY");
	const char *in = getenv("MAPKV_XFILE_IN");
	const char *out = getenv("MAPKV_XFILE_OUT");
	unsigned xfail = 0, xrun = 0;
	char err[512];

#ifdef _WIN32
	/* A second process started by check_win.c. */
	wintest_exe = argv[0];
	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return wintest_child(argc, argv);
#else
	(void)argc;
	(void)argv;
#endif
	setvbuf(stdout, NULL, _IONBF, 0);
	ck_w_skip = skips;
	printf("mapkv %s Windows test program\n", mapkv_version());
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (only && *only && strcmp(only, suites[i].name) != 0)
			continue;
		suites[i].run();
	}
	if (in && *in) {
		xrun++;
		if (xfile_verify(in, err, sizeof(err))) {
			printf("FAIL: file written on Linux, %s: %s\n", in,
			       err);
			xfail++;
		} else {
			printf("ok: file written on Linux, %s, reads the "
			       "same\n",
			       in);
		}
	}
	if (out && *out) {
		xrun++;
		if (xfile_write(out, err, sizeof(err)) ||
		    xfile_verify(out, err, sizeof(err))) {
			printf("FAIL: writing %s: %s\n", out, err);
			xfail++;
		} else {
			printf("ok: wrote %s for Linux to verify\n", out);
		}
	}
	printf("wintest: %u tests run, %u failed, %u skipped; cross-platform "
	       "files: %u checked, %u failed\n",
	       ck_w_total_run, ck_w_total_failed, ck_w_total_skipped, xrun,
	       xfail);
	return ck_w_total_failed || xfail ? 1 : 0;
}
