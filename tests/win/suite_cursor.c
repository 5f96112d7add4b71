/* tests/check_cursor.c as a function of the Windows test program. */
#define main wintest_cursor_main
#include "../check_cursor.c"
