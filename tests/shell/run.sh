#!/bin/sh
# run.sh: tests of the mapkv shell, driven through the real program.
#
#   cases/NAME.in   a script fed to `mapkv test.mapkv` on stdin, in a fresh
#                   folder holding a copy of data/; a first line
#                   "--! args: ..." gives options before the file name.
#   cases/NAME.out  what it must print (stdout and stderr together), then
#                   "exit N" with its exit status.
# Then: statements as arguments, the tools (stat, check, dump, load,
# copy), dump -> load -> dump round trips, LMDB's mdb_dump/mdb_load when
# installed, damaged copies found by check, and the interactive shell
# under a pseudo-terminal (script(1)).
#
# Run by `make check` with MAPKV_BIN, MAPKV_TEST_SRCDIR and TMPDIR set;
# by hand: MAPKV_BIN=shell/mapkv tests/shell/run.sh [CASE...]
# MAPKV_UPDATE=1 rewrites the .out files from what the program printed
# (review the diff before keeping it).
set -u

BIN=${MAPKV_BIN:-$PWD/shell/mapkv}
if [ -n "${MAPKV_TEST_SRCDIR:-}" ]; then
	SRC=$MAPKV_TEST_SRCDIR/shell
else
	SRC=$(cd "$(dirname "$0")" && pwd)
fi
DAMAGE=${MAPKV_DAMAGE:-$(dirname "$BIN")/../tests/shell/damage}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mapkv-shell.XXXXXX") || exit 99
trap 'rm -rf "$TMP"' EXIT
# Results must not depend on the user's history or locale.
HOME=$TMP/home
MAPKV_HISTORY=
LC_ALL=C
export HOME MAPKV_HISTORY LC_ALL
mkdir -p "$HOME"

pass=0
fail=0
skip=0
ok() {
	pass=$((pass + 1))
	echo "PASS: $1"
}
bad() {
	fail=$((fail + 1))
	echo "FAIL: $1"
}
skipped() {
	skip=$((skip + 1))
	echo "SKIP: $1"
}
# check NAME COMMAND...: pass when the command succeeds.
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

if [ ! -x "$BIN" ]; then
	echo "run.sh: $BIN is not built" >&2
	exit 99
fi

# mk ARGS...: the program with a time limit, so nothing can hang CI.
mk() {
	timeout 60 "$BIN" "$@"
}

# ---------------------------------------------------------------- cases

run_case() {
	in=$1
	name=$(basename "$in" .in)
	dir=$TMP/case-$name
	mkdir -p "$dir"
	if [ -d "$SRC/data" ]; then
		cp "$SRC"/data/* "$dir"/
	fi
	args=$(sed -n '1s/^--! args: //p' "$in")
	# shellcheck disable=SC2086 # args are words on purpose
	(cd "$dir" && timeout 60 "$BIN" $args test.mapkv <"$in" >out 2>&1
	echo "exit $?" >>out)
	if [ -n "${MAPKV_UPDATE:-}" ]; then
		cp "$dir/out" "$SRC/cases/$name.out"
	fi
	if cmp -s "$dir/out" "$SRC/cases/$name.out"; then
		ok "case $name"
	else
		bad "case $name"
		diff -u "$SRC/cases/$name.out" "$dir/out" | head -60
	fi
}

if [ $# -gt 0 ]; then
	for c in "$@"; do
		run_case "$SRC/cases/$c.in"
	done
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
fi

for in in "$SRC"/cases/*.in; do
	run_case "$in"
done

cd "$TMP" || exit 99

# ---------------------------------------------------------------- batch mode

t_args() {
	rm -f a.mapkv
	out=$(mk a.mapkv 'PUT k v' "PUT 'two words' 'x; y'" 'GET k; GET "two words"' 2>&1)
	[ "$out" = "v" ] && return 1 # the bad quote must be an error
	out=$(mk a.mapkv 'GET k' "GET 'two words'" 2>&1) &&
		[ "$out" = "v
x; y" ]
}
check "statements as arguments" t_args

t_bail() {
	rm -f b.mapkv
	# stops at the first error: the last PUT does not run
	mk b.mapkv 'PUT a 1' 'GET nope' 'PUT b 2' >out 2>err && return 1
	grep -q 'key not found: nope' err || return 1
	mk b.mapkv 'EXISTS b' >out && [ "$(cat out)" = 0 ] || return 1
	# -bail off goes on, and the status still says something failed
	mk -bail off b.mapkv 'GET nope' 'PUT b 2' >out 2>err && return 1
	mk b.mapkv 'GET b' >out && [ "$(cat out)" = 2 ]
}
check "batch mode stops at the first error unless -bail off" t_bail

t_stdin_pipe() {
	rm -f c.mapkv
	printf 'PUT a 1\nPUT b 2\nSCAN\n' | mk c.mapkv >out 2>err &&
		[ "$(cat out)" = "a	1
b	2" ] && [ ! -s err ]
}
check "a script on a pipe prints only results" t_stdin_pipe

t_no_newline() {
	rm -f d.mapkv
	printf 'PUT a 1\nGET a' | mk d.mapkv >out 2>&1 && [ "$(cat out)" = 1 ]
}
check "the last line may lack its newline" t_no_newline

t_options() {
	mk -version >out && grep -q '^mapkv [0-9]' out || return 1
	mk -help >out && grep -q usage out || return 1
	mk >out 2>&1
	[ $? -eq 2 ] || return 1
	mk -mode nope x.mapkv >out 2>&1
	[ $? -eq 2 ] || return 1
	mk -mode json o.mapkv 'PUT a 1; GET a' >out &&
		[ "$(cat out)" = '{"key":"a","value":"1"}' ] || return 1
	mk -readonly o.mapkv 'PUT b 2' >out 2>err && return 1
	grep -q READONLY err
}
check "options: -version -help -mode -readonly, usage errors" t_options

t_timer() {
	mk e.mapkv '.timer on' 'PUT a 1' 'GET a' >out 2>err &&
		[ "$(cat out)" = 1 ] && [ "$(grep -c '^time: real [0-9.]* s, cpu [0-9.]* s$' err)" = 2 ]
}
check ".timer prints a time per statement on stderr" t_timer

t_no_file() {
	mk check missing.mapkv >out 2>err && return 1
	grep -q 'cannot open missing.mapkv' err && [ ! -e missing.mapkv ]
}
check "tools do not create a missing database" t_no_file

# ---------------------------------------------------------------- data for the tools

# A database with every byte value in keys and values, empty values, long
# keys, values in overflow pages, and named trees.
make_data() {
	awk 'BEGIN {
		print "BEGIN"
		for (i = 0; i < 256; i++)
			printf "PUT x%c6b%02x%c x%c%02x%02x5c%c\n", 39, i, 39, 39, i, 255 - i, 39
		printf "PUT empty %c%c\n", 39, 39
		k = ""; for (i = 0; i < 1024; i++) k = k "z"
		printf "PUT %s long-key\n", k
		v = ""; for (i = 0; i < 3000; i++) v = v sprintf("%02x", i % 256)
		printf "PUT big x%c%s%c\n", 39, v, 39
		print "CREATE TREE second; USE second"
		for (i = 0; i < 2000; i++)
			printf "PUT key:%05d %c value \\ %d %c\n", i, 39, i * i, 39
		printf "CREATE TREE %codd name%c\n", 39, 39
		print "USE MAIN"
		print "COMMIT"
	}' >data.script
	rm -f "$1"
	mk "$1" <data.script
}

make_data src.mapkv || bad "making the test data"

t_stat() {
	mk stat src.mapkv >out || return 1
	grep -q '^page size  *[0-9]' out &&
		grep -q '^pages used  *[0-9]' out &&
		grep -q '^pages free  *[0-9]' out &&
		grep -q '^readers  *0 of [0-9]' out &&
		grep -q '^  (main)  *[0-9]  *259 ' out &&
		grep -q '^  second  *2  *2000 ' out &&
		grep -q '^  odd name  *0  *0 ' out || return 1
	mk -mode json src.mapkv .stat >out || return 1
	grep -q '^{"file":"src.mapkv","page_size":[0-9]*,' out &&
		grep -q '^{"tree":"second","depth":2,"entries":2000,' out
}
check "stat lists the file and every tree" t_stat

t_check_clean() {
	mk check src.mapkv >out && [ "$(cat out)" = ok ] &&
		mk -mode json src.mapkv .check >out &&
		[ "$(cat out)" = '{"problems":0}' ]
}
check "check of a sound database prints ok" t_check_clean

t_roundtrip() {
	for fmt in "" -p; do
		mk dump -a $fmt src.mapkv >d1 || return 1
		rm -f r.mapkv
		mk load r.mapkv <d1 || return 1
		mk dump -a $fmt r.mapkv >d2 || return 1
		cmp d1 d2 || return 1
		grep -q '^database=odd name$' d1 || return 1
	done
	# one tree, into another name, with -s on both sides
	mk dump -s second -f d3 src.mapkv || return 1
	rm -f r2.mapkv
	mk load -s other -f d3 r2.mapkv || return 1
	mk dump -s other r2.mapkv | sed 's/^database=other$/database=second/' >d4
	cmp d3 d4
}
check "dump -> load -> dump is byte-identical (bytevalue and print)" t_roundtrip

t_shell_dump_load() {
	rm -f s.mapkv
	mk src.mapkv '.dump -a -p all.dump' || return 1
	mk s.mapkv '.load all.dump' '.dump -a -p again.dump' || return 1
	cmp all.dump again.dump || return 1
	# .load -N keeps existing values; without it they are replaced
	mk s.mapkv 'USE second; PUT key:00001 changed' ".load -N -s second all.dump" 'USE second; GET key:00001' >out &&
		[ "$(cat out)" = changed ] || return 1
	mk s.mapkv ".load all.dump" 'USE second; GET key:00001' >out &&
		[ "$(cat out)" = ' value \\ 1 ' ]
}
check ".dump and .load in the shell" t_shell_dump_load

t_copy() {
	rm -f c1.mapkv c2.mapkv
	mk copy src.mapkv c1.mapkv && mk copy -c src.mapkv c2.mapkv || return 1
	mk copy src.mapkv c1.mapkv 2>err && return 1
	grep -q 'already exists' err || return 1
	mk dump -a src.mapkv >d0
	for c in c1 c2; do
		mk check $c.mapkv >out && [ "$(cat out)" = ok ] || return 1
		mk dump -a $c.mapkv | cmp - d0 || return 1
	done
	rm -f c3.mapkv
	mk src.mapkv 'BEGIN' 'PUT uncommitted 1' '.copy -c c3.mapkv' 'ROLLBACK' &&
		mk dump -a c3.mapkv | cmp - d0
}
check "copy and copy -c make sound, equal copies of the last commit" t_copy

t_copy_smaller() {
	rm -f g.mapkv g2.mapkv
	# about 3 MB of values, then all but a few keys deleted
	awk 'BEGIN {
		v = ""; for (i = 0; i < 1500; i++) v = v "v"
		print "BEGIN"
		for (i = 0; i < 2000; i++) printf "PUT k%05d %s\n", i, v
		print "COMMIT"
		print "DEL FROM k00010"
	}' | mk g.mapkv >/dev/null || return 1
	mk copy -c g.mapkv g2.mapkv || return 1
	big=$(wc -c <g.mapkv)
	small=$(wc -c <g2.mapkv)
	[ "$small" -lt "$big" ] || {
		echo "compact copy $small bytes, original $big"
		return 1
	}
}
check "copy -c of a database with free pages is smaller" t_copy_smaller

t_jq() {
	mk -mode json src.mapkv 'SCAN' 'USE second; SCAN' 'USE MAIN' '.stat' \
		'.check' 'TREES' 'COUNT' 'EXISTS big' >out || return 1
	jq -c . <out >parsed || return 1
	[ "$(wc -l <out)" -eq "$(wc -l <parsed)" ] && [ "$(wc -l <out)" -gt 2000 ]
}
if command -v jq >/dev/null 2>&1; then
	check "json mode: every line is a JSON object jq reads" t_jq
else
	skipped "json read back by jq (jq not installed)"
fi

# ---------------------------------------------------------------- LMDB

# LMDB's dump has header lines mapkv leaves out; compare the rest.
strip_lmdb() {
	grep -v -e '^mapsize=' -e '^maxreaders=' -e '^db_pagesize=' "$1"
}

t_lmdb() {
	# mapkv -> mdb_load -> mdb_dump, one named tree (bytevalue), and the
	# main tree in print format without backslashes (LMDB 0.9's
	# mdb_dump -p does not double them)
	mk dump -s second src.mapkv >m1 || return 1
	rm -rf lm && mkdir lm
	mdb_load -n -f m1 lm/db || return 1
	mdb_dump -n -s second lm/db >m2 || return 1
	strip_lmdb m2 | cmp - m1 || return 1
	rm -f p.mapkv
	mk p.mapkv 'PUT a 1' "PUT 'key two' 'value, two'" "PUT x'00ff' x'0a'" || return 1
	mk dump -p p.mapkv >m3 && mdb_load -n -f m3 lm/main || return 1
	mdb_dump -n -p lm/main >m4 && strip_lmdb m4 | cmp - m3 || return 1
	# LMDB -> mapkv: mdb_dump's output loads, and dumps back the same
	printf 'k1\nv1\nk\\\\2\nv\\0a2\n' | mdb_load -n -T -s fromlmdb lm/t || return 1
	mdb_dump -n -s fromlmdb lm/t >m5 || return 1
	rm -f q.mapkv
	mk load q.mapkv <m5 && mk dump -s fromlmdb q.mapkv >m6 || return 1
	strip_lmdb m5 | cmp - m6 || return 1
	mk q.mapkv 'USE fromlmdb; SCAN' >out &&
		[ "$(cat out)" = 'k1	v1
k\\2	v\n2' ]
}
if command -v mdb_dump >/dev/null 2>&1 && command -v mdb_load >/dev/null 2>&1; then
	check "interoperates with LMDB's mdb_dump and mdb_load" t_lmdb
else
	skipped "LMDB interoperability (mdb_dump/mdb_load not installed)"
fi

# ---------------------------------------------------------------- damage

# tests/shell/damage makes one kind of damage to a database file and says
# which page it hit; check must exit 1 and name that page.
t_damage() {
	kind=$1
	rm -f base.mapkv dmg.mapkv
	mk copy src.mapkv base.mapkv || return 1
	cp base.mapkv dmg.mapkv
	page=$("$DAMAGE" dmg.mapkv "$kind") || {
		echo "damage $kind failed"
		return 1
	}
	mk check dmg.mapkv >out 2>&1
	st=$?
	if [ $st -ne 1 ]; then
		echo "check exit status $st"
		cat out
		return 1
	fi
	# the listing names the damaged page (page 0 is a meta page's own)
	grep -q "^page $page:" out || grep -q "[^0-9]$page[^0-9]" out || {
		echo "no problem names page $page:"
		cat out
		return 1
	}
}
if [ -x "$DAMAGE" ]; then
	for kind in $("$DAMAGE" --list); do
		check "check finds damage: $kind" t_damage "$kind"
	done
else
	bad "damage helper $DAMAGE is not built"
fi

# ---------------------------------------------------------------- terminal

# The interactive shell under a pseudo-terminal made by script(1): what is
# typed is piped into the terminal, what the shell shows comes back.
pty() {
	timeout 20 script -qec "$BIN $1" /dev/null
}

t_pty() {
	rm -f i.mapkv "$HOME/.mapkv_history"
	printf 'PUT k hello\nSCAN FROM\nGET k\n.quit\n' | pty i.mapkv >out 2>&1
	tr -d '\r' <out >screen
	# (without libedit the echo of what is typed comes before the prompt,
	# so a result may share its line with the prompt)
	grep -q '^mapkv .* Enter .help for help' screen &&
		grep -q 'error: syntax error at end of line: expected a key$' screen &&
		grep -q '^  SCAN FROM$' screen &&
		grep -q '^           \^$' screen &&
		grep -q '^\(mapkv> \)*hello$' screen || {
		cat screen
		return 1
	}
	[ "$libedit" = yes ] || return 0
	# the lines went to the history file...
	grep -q 'GET.*k' "$HOME/.mapkv_history" || return 1
	# ...and come back with the up arrow in the next session: two up
	# from the end is "GET k", which prints hello again
	printf '\033[A\033[A\n.quit\n' | pty i.mapkv >out 2>&1
	tr -d '\r' <out >screen
	grep -q '^hello$' screen || {
		cat screen
		return 1
	}
}
# Wait (10 s at most) until file $1 shows the prompt $2 times.
wait_prompts() {
	i=0
	while [ "$(tr -d '\r' <"$1" | grep -o 'mapkv> ' | wc -l)" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.1
	done
}
t_pty_interrupt() {
	rm -f n.mapkv live
	: >live
	# Ctrl-C at the prompt drops the line typed so far (GET a does not
	# run) and the shell goes on; each key waits for its prompt.
	{
		printf 'PUT a 1\n'
		wait_prompts live 2
		printf 'GET a\003'
		wait_prompts live 3
		printf 'GET a\n.quit\n'
	} | pty n.mapkv >live 2>&1
	tr -d '\r' <live >screen
	[ "$(grep -c '^1$' screen)" = 1 ] && grep -q '^mapkv> \.quit$' screen || {
		cat screen
		return 1
	}
}
t_pty_complete() {
	rm -f j.mapkv
	mk j.mapkv 'CREATE TREE alpha' || return 1
	# "us<TAB> al<TAB>" completes to "use alpha"; the prompt shows it
	printf 'us\t al\t\nPUT a 1\nSCAN\n.quit\n' | pty j.mapkv >out 2>&1
	tr -d '\r' <out >screen
	grep -q 'mapkv:alpha> ' screen && grep -q '^a	1$' screen || {
		cat screen
		return 1
	}
	mk j.mapkv 'USE alpha; GET a' >out && [ "$(cat out)" = 1 ]
}
if command -v script >/dev/null 2>&1 && script -qec true /dev/null </dev/null >/dev/null 2>&1; then
	libedit=no
	mk -version | grep -q libedit && libedit=yes
	if [ "$libedit" = yes ]; then
		check "interactive: history, syntax error with caret" t_pty
		check "interactive: tab completion of keywords and tree names" t_pty_complete
		check "interactive: Ctrl-C drops the line being typed" t_pty_interrupt
	else
		check "interactive: syntax error with caret (no libedit)" t_pty
		skipped "history and tab completion (built without libedit)"
	fi
else
	skipped "interactive tests (script(1) cannot make a terminal here)"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
