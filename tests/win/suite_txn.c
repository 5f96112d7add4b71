/* tests/check_txn.c as a function of the Windows test program. */
#define main wintest_txn_main
#include "../check_txn.c"
