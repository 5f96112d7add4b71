/* tests/check_btree.c as a function of the Windows test program. */
#define main wintest_btree_main
#include "../check_btree.c"
