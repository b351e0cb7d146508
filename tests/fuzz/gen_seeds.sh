#!/bin/sh
# tests/fuzz/gen_seeds.sh: writes the kept seed corpora of fuzz_parse, fuzz_sql, fuzz_auto and
# fuzz_lua (tests/fuzz/corpus/<target>/seedN) from the small inputs below. The other targets'
# seeds come from their own generators (gen_ckpt_seeds) or were written by hand. Run from
# anywhere; rerun after changing an input here, and commit the result.
set -eu
cd "$(dirname "$0")/corpus"

# seed TARGET N FIRSTBYTE_OCTAL TEXT: corpus/TARGET/seedN = one byte, then TEXT (printf %b:
# bytes are written \0NNN, so that a digit after them is not read as part of the escape)
seed() {
  mkdir -p "$1"
  { printf "\\$3"; printf '%b' "$4"; } > "$1/seed$2"
}

# fuzz_parse: even first byte = a shell line; odd = typed setters (command, then op key value...)
seed parse 0 000 "fz.all req=1 n=5 s='hi there' b=yes c=ccc f=0.25 big=-9000000000 g=1e300 p=/tmp/x"
seed parse 1 000 'fz.pos hello 3 2.5'
seed parse 2 000 'fz.all req="quoted \\" esc" n=1001 lo=-6 huge=2147483648'
seed parse 3 000 'help fz.all'
seed parse 4 000 'train bprmf data=demo epochs=3 dim=4294967360'
seed parse 5 000 "eval model=m data=d k=10 split=test protocol=sampled-100"
seed parse 6 000 "fz.fail 'unterminated"
seed parse 7 000 'fz.all req=1 name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
seed parse 8 001 '\0001\0000\0000\0000\0001\0000\0000\0000\0000\0000\0000\0000\0001\0002\0005\0000\0000\0000\0000\0000\0000\0000\0001\0003\0005\0077\0340\0000\0000\0000\0000\0000\0000\0004\0010\0001'
seed parse 9 001 '\0002\0001\0000\0005hello\0001\0000\00017\0000\0001\00032.5'

# fuzz_sql: bit 0 writes allowed, (byte >> 1) % 3 parameters, bit 3 collect rows
seed sql 0 000 'SELECT * FROM runs JOIN metrics ON metrics.run_id = runs.id'
seed sql 1 001 "INSERT INTO fz_plain(v) VALUES ('x'); SELECT changes()"
seed sql 2 001 'CREATE TRIGGER t AFTER INSERT ON fz_plain BEGIN DELETE FROM runs; END'
seed sql 3 001 'INSERT INTO fz_items(v) VALUES (1)'
seed sql 4 010 'PRAGMA journal_mode; PRAGMA table_info(runs)'
seed sql 5 002 'SELECT ?1'
seed sql 6 004 'SELECT ?1, ?2 UNION ALL SELECT name, sql FROM sqlite_schema'
seed sql 7 001 "ATTACH 'x.db' AS x"
seed sql 8 010 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
seed sql 9 001 "UPDATE runs SET status = 'done'; DELETE FROM metrics"
seed sql 10 001 'CREATE VIEW fz_v AS SELECT * FROM runs; SELECT * FROM fz_v'
seed sql 11 001 'ALTER TABLE fz_plain RENAME TO fz_q; CREATE TABLE fz_s(id INTEGER PRIMARY KEY AUTOINCREMENT)'
seed sql 12 001 'DROP TABLE metrics'
seed sql 13 001 "VACUUM INTO 'copy.db'"
seed sql 14 001 'PRAGMA foreign_keys = OFF; BEGIN; SAVEPOINT a; ROLLBACK'
seed sql 15 001 'CREATE TEMP TABLE runs(x); INSERT INTO runs VALUES (1)'
seed sql 16 001 'CREATE INDEX fz_i ON runs(status); REINDEX; ANALYZE'

# fuzz_auto: scenario byte (see fuzz_auto.c), two option bytes, then files separated by \n--\n
seed auto 0 000 '\0001\0000''1\t1\t5\t881250949\n2\t1\t3\t1\n\n--\n1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n--\n1|24|M|technician|85711\n'
seed auto 1 001 '\0000\0000''\0357\0273\02771\t1\t5\t8\n1\t2\t3\t9\n--\n2|Two (1996)|01-Jan-1996||u|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n--\nunknown|0\nAction|1\n'
seed auto 2 002 '\0000\0000''1::1193::5::978300760\n1::2::3::978300761\n--\n1193::One Flew (1975)::Drama\n--\n1::F::1::10::48067\n'
seed auto 3 003 '\0000\0000''1::1::5::1\n--\n1;Toy Story (1995);Animation|Comedy\n'
seed auto 4 004 '\0000\0000''user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t4\n--\nitem_id:token\ttitle:token_seq\tprice:float\n2\ta b\t1.5\n--\nuser_id:token\tage:float\n1\t30\n'
seed auto 5 006 '\0000\0000''1 2\n1 3\n2 3\n'
seed auto 6 006 '\0000\0000''1\t2\t5\t3\n1\t3\t4\t3\n1\t3\t4\n'
seed auto 7 007 '\0000\0000''1 2 3 4\n2 5 6\n'
seed auto 8 010 '\0000\0000''user,item,rating,timestamp\n1,2,3,4\n"u,2",3,1,5\n'
seed auto 9 011 '\0000\0000''user_id\titem_id\n1\t2\n'
seed auto 10 016 '\0000\0000''{"movieMentions": {"111": "Super Troopers (2001)"}, "messages": [{"timeOffset": 0, "text": "have you seen @111", "senderWorkerId": 1, "messageId": 1}], "conversationId": "1", "initiatorWorkerId": 1, "respondentWorkerId": 2}\n'
seed auto 11 017 '\0000\0000''dialog_id\tutt_id\tspeaker\tturn_id\ttext\tmovies\nx\t1\tRECOMMENDER\t1\tHello\tA; B\nx\t2\tSEEKER\t2\tHi\t\n'
seed auto 12 017 '\0005\0026''1;2;3\n4;5;6\n'
seed auto 13 017 '\0214\0105''user::item::r\n"a"::"b"::1\n'

# fuzz_lua: function index, argument count, values (see push_value in fuzz_lua.c)
i=0
while [ $i -lt 38 ]; do
  o=$(printf '%03o' $i)
  # f(table{positional 1: name k, "req" = small int 1, "n" = float 0.5, "s" = string "x"})
  seed lua $i "$o" '\0001\0012\0001\0003\0010\0004\0000\0010\0000\0003\0001\0001\0004\0005\0002\0001\0011\0007\0001x'
  i=$((i + 1))
done
seed lua 40 003 '\0001\0010\0001'             # run "req" -> unknown command
seed lua 41 000 '\0001\0012\0000\0002\0000\0000\0002\0200\0000\0000\0000\0000\0000\0000\0000\0000\0001\0003\0014\0001\0001\0000\0000\0000'
seed lua 42 010 '\0002\0010\0052\0012\0001\0001\0000\0011\0063'
