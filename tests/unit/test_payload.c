/*
 * Unit tests for payload.c: the four payload modes, and above all the compact
 * serializer's promise to match JavaScript's JSON.stringify(JSON.parse(text))
 * byte for byte. The expected outputs below were produced by node and pasted
 * in as literals, so this binary needs no node; the differential test
 * tests/integration/test_payload_node.py covers random documents with node
 * as the live oracle.
 *
 * Cases where herald deliberately differs from JSON.parse (invalid UTF-8, the
 * nesting limit) are written by hand below the generated tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herald/buf.h"
#include "herald/err.h"
#include "herald/payload.h"

/* src/payload.c's PAYLOAD_MAX_DEPTH: nested containers allowed. */
#define MAX_DEPTH 512

#define BIG (1u << 24)

struct pcase {
    const char *in;
    size_t inlen;
    const char *out; /* NULL: must fail with HERALD_EPARSE */
    size_t outlen;
};

/* A literal and its length, NUL bytes included. */
#define S(x) x, sizeof(x) - 1
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- generated tables (see the comment above each) ---------------------- */

/* Generated with node v20.20.2: expected = JSON.stringify(JSON.parse(in)). */
static const struct pcase compact_numbers[] = {
    {S("0"), S("0")},
    {S("-0"), S("0")},
    {S("0.0"), S("0")},
    {S("-0.0"), S("0")},
    {S("0e0"), S("0")},
    {S("-0e-0"), S("0")},
    {S("1"), S("1")},
    {S("-1"), S("-1")},
    {S("1.0"), S("1")},
    {S("1.00000"), S("1")},
    {S("1E2"), S("100")},
    {S("1e2"), S("100")},
    {S("1E+2"), S("100")},
    {S("1e-2"), S("0.01")},
    {S("1.5"), S("1.5")},
    {S("-1.5"), S("-1.5")},
    {S("0.1"), S("0.1")},
    {S("0.2"), S("0.2")},
    {S("0.3"), S("0.3")},
    {S("0.30000000000000004"), S("0.30000000000000004")},
    {S("100"), S("100")},
    {S("1e21"), S("1e+21")},
    {S("1e+21"), S("1e+21")},
    {S("1e20"), S("100000000000000000000")},
    {S("999999999999999999999"), S("1e+21")},
    {S("99999999999999999999"), S("100000000000000000000")},
    {S("123456789012345678901"), S("123456789012345680000")},
    {S("123456789012345680000"), S("123456789012345680000")},
    {S("1e-6"), S("0.000001")},
    {S("1e-7"), S("1e-7")},
    {S("0.000001"), S("0.000001")},
    {S("0.0000001"), S("1e-7")},
    {S("5e-7"), S("5e-7")},
    {S("0.0000005"), S("5e-7")},
    {S("1.5e-7"), S("1.5e-7")},
    {S("1.234e-6"), S("0.000001234")},
    {S("123e-9"), S("1.23e-7")},
    {S("0.000123"), S("0.000123")},
    {S("9007199254740991"), S("9007199254740991")},
    {S("9007199254740992"), S("9007199254740992")},
    {S("9007199254740993"), S("9007199254740992")},
    {S("-9007199254740993"), S("-9007199254740992")},
    {S("18446744073709551615"), S("18446744073709552000")},
    {S("18446744073709551616"), S("18446744073709552000")},
    {S("123456789012345"), S("123456789012345")},
    {S("1234567890123456"), S("1234567890123456")},
    {S("12345678901234567"), S("12345678901234568")},
    {S("4294967295"), S("4294967295")},
    {S("4294967296"), S("4294967296")},
    {S("1.7976931348623157e308"), S("1.7976931348623157e+308")},
    {S("1.7976931348623158e308"), S("1.7976931348623157e+308")},
    {S("1.7976931348623159e308"), S("null")},
    {S("1.8e308"), S("null")},
    {S("-1.8e308"), S("null")},
    {S("1e309"), S("null")},
    {S("1e400"), S("null")},
    {S("-1e400"), S("null")},
    {S("1e99999"), S("null")},
    {S("5e-324"), S("5e-324")},
    {S("4.9406564584124654e-324"), S("5e-324")},
    {S("2.4703282292062328e-324"), S("5e-324")},
    {S("2.4703282292062327e-324"), S("0")},
    {S("1e-324"), S("0")},
    {S("1e-400"), S("0")},
    {S("-1e-400"), S("0")},
    {S("2.2250738585072014e-308"), S("2.2250738585072014e-308")},
    {S("2.2250738585072011e-308"), S("2.225073858507201e-308")},
    {S("3.141592653589793"), S("3.141592653589793")},
    {S("2.718281828459045"), S("2.718281828459045")},
    {S("1.7976931348623157e+308"), S("1.7976931348623157e+308")},
    {S("0.1e1"), S("1")},
    {S("0.01e2"), S("1")},
    {S("10e-1"), S("1")},
    {S("100e-2"), S("1")},
    {S("1.25e2"), S("125")},
    {S("12.5"), S("12.5")},
    {S("1e0"), S("1")},
    {S("1e-0"), S("1")},
    {S("1e+0"), S("1")},
    {S("1e00"), S("1")},
    {S("1e007"), S("10000000")},
    {S("1E-007"), S("1e-7")},
    {S("123.456"), S("123.456")},
    {S("-123.456e-3"), S("-0.123456")},
    {S("6.02214076e23"), S("6.02214076e+23")},
    {S("6.62607015e-34"), S("6.62607015e-34")},
    {S("1.602176634e-19"), S("1.602176634e-19")},
    {S("299792458"), S("299792458")},
    {S("0.5"), S("0.5")},
    {S("0.25"), S("0.25")},
    {S("0.125"), S("0.125")},
    {S("0.0625"), S("0.0625")},
    {S("144115188075855877"), S("144115188075855870")},
    {S("7.120236347223045e-307"), S("7.120236347223045e-307")},
    {S("7.291122019556398e-304"), S("7.291122019556398e-304")},
    {S("5.684341886080802e-14"), S("5.684341886080802e-14")},
    {S("2.9802322387695312e-8"), S("2.9802322387695312e-8")},
    {S("1.1102230246251565e-16"), S("1.1102230246251565e-16")},
    {S("4.440892098500626e-16"), S("4.440892098500626e-16")},
    {S("9.5367431640625e-7"), S("9.5367431640625e-7")},
    {S("1.52587890625e-5"), S("0.0000152587890625")},
    {S("4.76837158203125e-7"), S("4.76837158203125e-7")},
    {S("8.881784197001252e-16"), S("8.881784197001252e-16")},
    {S("1.8014398509481984e16"), S("18014398509481984")},
    {S("3.602879701896397e16"), S("36028797018963970")},
    {S("1e15"), S("1000000000000000")},
    {S("1e16"), S("10000000000000000")},
    {S("1e17"), S("100000000000000000")},
    {S("12345678901234567890"), S("12345678901234567000")},
    {S("1.5e300"), S("1.5e+300")},
    {S("-2.5e-300"), S("-2.5e-300")},
    {S("0.000001234"), S("0.000001234")},
    {S("123456.789e3"), S("123456789")},
    {S("1.0000000000000002"), S("1.0000000000000002")},
    {S("0.9999999999999999"), S("0.9999999999999999")},
    {S("2.0000000000000004"), S("2.0000000000000004")},
    {S("0.0000000000000000000000000000000000000000000000000000000000001"), S("1e-61")},
    {S("10000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000"),
     S("1e+101")},
    {S("1.00000000000000000000000000000000000000000000000000000000000000000000000001"), S("1")},
    {S("9.999999999999999e22"), S("1e+23")},
    {S("1e23"), S("1e+23")},
    {S("8.41e21"), S("8.41e+21")},
    {S("-1e-7"), S("-1e-7")},
    {S("-0.000001"), S("-0.000001")},
};

static const struct pcase compact_strings[] = {
    {S("\"\""), S("\"\"")},
    {S("\"abc\""), S("\"abc\"")},
    {S("\"a\\\"b\""), S("\"a\\\"b\"")},
    {S("\"a\\\\b\""), S("\"a\\\\b\"")},
    {S("\"\\/\""), S("\"/\"")},
    {S("\"a/b\""), S("\"a/b\"")},
    {S("\"\\b\\f\\n\\r\\t\""), S("\"\\b\\f\\n\\r\\t\"")},
    {S("\"\\u0000\""), S("\"\\u0000\"")},
    {S("\"\\u0001\\u001f\\u001F\""), S("\"\\u0001\\u001f\\u001f\"")},
    {S("\"\\u0020\""), S("\" \"")},
    {S("\"\\u0022\""), S("\"\\\"\"")},
    {S("\"\\u005c\""), S("\"\\\\\"")},
    {S("\"\\u005C\""), S("\"\\\\\"")},
    {S("\"\\u002f\""), S("\"/\"")},
    {S("\"\\u0041\\u00e9\\u00E9\""), S("\"A\303\251\303\251\"")},
    {S("\"\\u007f\""), S("\"\177\"")},
    {S("\"\177\""), S("\"\177\"")},
    {S("\"\\u0008\\u000c\\u000a\\u000d\\u0009\""), S("\"\\b\\f\\n\\r\\t\"")},
    {S("\"\\u000b\""), S("\"\\u000b\"")},
    {S("\"\\u2028\\u2029\""), S("\"\342\200\250\342\200\251\"")},
    {S("\"\342\200\250\342\200\251\""), S("\"\342\200\250\342\200\251\"")},
    {S("\"\303\251\""), S("\"\303\251\"")},
    {S("\"\346\227\245\346\234\254\350\252\236\""), S("\"\346\227\245\346\234\254\350\252\236\"")},
    {S("\"\360\237\230\200\""), S("\"\360\237\230\200\"")},
    {S("\"\\ud83d\\ude00\""), S("\"\360\237\230\200\"")},
    {S("\"\\uD83D\\uDE00\""), S("\"\360\237\230\200\"")},
    {S("\"\\ud83d\""), S("\"\\ud83d\"")},
    {S("\"\\ude00\""), S("\"\\ude00\"")},
    {S("\"\\ude00\\ud83d\""), S("\"\\ude00\\ud83d\"")},
    {S("\"\\ud83d\\ud83d\\ude00\""), S("\"\\ud83d\360\237\230\200\"")},
    {S("\"\\ud83dx\""), S("\"\\ud83dx\"")},
    {S("\"\\ud83d\\n\""), S("\"\\ud83d\\n\"")},
    {S("\"x\\udbff\\udfff\""), S("\"x\364\217\277\277\"")},
    {S("\"\\ud800\\u0041\""), S("\"\\ud800A\"")},
    {S("\"\\uDBFF\""), S("\"\\udbff\"")},
    {S("\"\\udfff\\udfff\""), S("\"\\udfff\\udfff\"")},
    {S("\"\\uFEFF\""), S("\"\357\273\277\"")},
    {S("\"\357\273\277\""), S("\"\357\273\277\"")},
    {S("\"\\uffff\\uFFFE\""), S("\"\357\277\277\357\277\276\"")},
    {S("\"\302\240\302\205\""), S("\"\302\240\302\205\"")},
    {S("\"\\u0085\""), S("\"\302\205\"")},
    {S("\"tab\\there\""), S("\"tab\\there\"")},
    {S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), S("\"\\\"\\\\/\\b\\f\\n\\r\\t\"")},
    {S("\"\\ud800\\ud800\""), S("\"\\ud800\\ud800\"")},
    {S("\"a\\u0000b\""), S("\"a\\u0000b\"")},
    {S("\"\340\240\200\357\277\277\360\220\200\200\364\217\277\277\""),
     S("\"\340\240\200\357\277\277\360\220\200\200\364\217\277\277\"")},
    {S("\"\\u0800\""), S("\"\340\240\200\"")},
    {S("\"\\uDBFF\\uDFFF\""), S("\"\364\217\277\277\"")},
    {S("\"\\ud834\\udd1e\""), S("\"\360\235\204\236\"")},
};

static const struct pcase compact_structures[] = {
    {S("[]"), S("[]")},
    {S("{}"), S("{}")},
    {S("[[]]"), S("[[]]")},
    {S("[{}]"), S("[{}]")},
    {S("{\"a\":[]}"), S("{\"a\":[]}")},
    {S("[1,[2,[3,[4]]]]"), S("[1,[2,[3,[4]]]]")},
    {S("{\"a\":{\"b\":{\"c\":{}}}}"), S("{\"a\":{\"b\":{\"c\":{}}}}")},
    {S("[true,false,null]"), S("[true,false,null]")},
    {S("true"), S("true")},
    {S("false"), S("false")},
    {S("null"), S("null")},
    {S("[1,\"a\",true,null,{\"k\":[1.0,2e0]}]"), S("[1,\"a\",true,null,{\"k\":[1,2]}]")},
    {S("{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":\"x\"}"),
     S("{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":\"x\"}")},
    {S(" [ 1 , 2 ] "), S("[1,2]")},
    {S("\011\012\015 {\012\011\"a\" :\015 1 ,\012 \"b\"\011:[ ]\015}\012"),
     S("{\"a\":1,\"b\":[]}")},
    {S("  \"s\"  "), S("\"s\"")},
    {S("\0121\012"), S("1")},
    {S(" \011\015\012[\011\015\012]\011\015\012"), S("[]")},
    {S("{ }"), S("{}")},
    {S("[ ]"), S("[]")},
    {S("{\"\":1}"), S("{\"\":1}")},
    {S("{\"\":1,\"\":2}"), S("{\"\":2}")},
    {S("{\"a b\":1,\" \":2}"), S("{\"a b\":1,\" \":2}")},
    {S("{\"b\":1,\"a\":2,\"1\":3,\"0\":4}"), S("{\"0\":4,\"1\":3,\"b\":1,\"a\":2}")},
    {S("{\"10\":1,\"9\":2,\"1\":3,\"100\":4}"), S("{\"1\":3,\"9\":2,\"10\":1,\"100\":4}")},
    {S("{\"01\":1,\"1\":2,\"-1\":3,\"1.0\":4,\"1e3\":5,\" 1\":6}"),
     S("{\"1\":2,\"01\":1,\"-1\":3,\"1.0\":4,\"1e3\":5,\" 1\":6}")},
    {S("{\"4294967294\":1,\"4294967295\":2,\"4294967296\":3,\"0\":4}"),
     S("{\"0\":4,\"4294967294\":1,\"4294967295\":2,\"4294967296\":3}")},
    {S("{\"z\":1,\"2\":2,\"y\":3,\"1\":4,\"x\":5,\"0\":6}"),
     S("{\"0\":6,\"1\":4,\"2\":2,\"z\":1,\"y\":3,\"x\":5}")},
    {S("{\"123456789012\":1,\"12\":2}"), S("{\"12\":2,\"123456789012\":1}")},
    {S("{\"0\":1,\"00\":2,\"000\":3}"), S("{\"0\":1,\"00\":2,\"000\":3}")},
    {S("{\"\\u0031\":\"one\",\"0\":\"zero\"}"), S("{\"0\":\"zero\",\"1\":\"one\"}")},
    {S("{\"a\":{\"2\":1,\"1\":2},\"1\":[{\"b\":1,\"0\":2}]}"),
     S("{\"1\":[{\"0\":2,\"b\":1}],\"a\":{\"1\":2,\"2\":1}}")},
    {S("{\"-0\":1,\"0\":2}"), S("{\"0\":2,\"-0\":1}")},
    {S("{\"9007199254740993\":1,\"3\":2}"), S("{\"3\":2,\"9007199254740993\":1}")},
    {S("{\"1\":1,\"1\":2}"), S("{\"1\":2}")},
    {S("{\"\357\274\222\":1,\"1\":2}"), S("{\"1\":2,\"\357\274\222\":1}")},
    {S("{\"a\":1,\"b\":2,\"a\":3}"), S("{\"a\":3,\"b\":2}")},
    {S("{\"a\":1,\"a\":2,\"a\":3}"), S("{\"a\":3}")},
    {S("{\"a\":1,\"b\":2,\"c\":3,\"b\":4,\"a\":5}"), S("{\"a\":5,\"b\":4,\"c\":3}")},
    {S("{\"a\":1,\"\\u0061\":2}"), S("{\"a\":2}")},
    {S("{\"\\u0061\":1,\"a\":2}"), S("{\"a\":2}")},
    {S("{\"a\":{\"x\":1},\"a\":[2]}"), S("{\"a\":[2]}")},
    {S("{\"a\":[1],\"b\":{\"a\":1,\"a\":2},\"a\":{\"a\":3,\"a\":4}}"),
     S("{\"a\":{\"a\":4},\"b\":{\"a\":2}}")},
    {S("{\"\\ud83d\\ude00\":1,\"\360\237\230\200\":2}"), S("{\"\360\237\230\200\":2}")},
    {S("{\"\\ud83d\":1,\"\\uD83D\":2}"), S("{\"\\ud83d\":2}")},
    {S("{\"\\ud83d\\ude00\":1,\"\\ud83d\":2,\"\\ude00\":3}"),
     S("{\"\360\237\230\200\":1,\"\\ud83d\":2,\"\\ude00\":3}")},
    {S("{\"__proto__\":1,\"a\":2}"), S("{\"__proto__\":1,\"a\":2}")},
    {S("{\"__proto__\":{\"x\":1},\"__proto__\":2}"), S("{\"__proto__\":2}")},
    {S("{\"constructor\":1,\"toString\":2}"), S("{\"constructor\":1,\"toString\":2}")},
    {S("{\"data\":1,\"data\":2}"), S("{\"data\":2}")},
    {S("{\"1\":\"a\",\"b\":\"b\",\"1\":\"c\",\"0\":\"d\",\"b\":\"e\"}"),
     S("{\"0\":\"d\",\"1\":\"c\",\"b\":\"e\"}")},
    {S("{\"\\n\":1,\"\\u000a\":2,\"\\/\":3,\"/\":4}"), S("{\"\\n\":2,\"/\":4}")},
    {S("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9"
       "\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"k1"
       "7\":17,\"k18\":18,\"k19\":19,\"k20\":20,\"k21\":21,\"k22\":22,\"k0\":23,\"k1\":24,\"k2"
       "\":25,\"k3\":26,\"k4\":27,\"k5\":28,\"k6\":29,\"k7\":30,\"k8\":31,\"k9\":32,\"k10\":33"
       ",\"k11\":34,\"k12\":35,\"k13\":36,\"k14\":37,\"k15\":38,\"k16\":39,\"7\":40,\"3\":41,"
       "\"k5\":42,\"10\":43,\"3\":44,\"z\":45,\"0\":46,\"k0\":47}"),
     S("{\"0\":46,\"3\":44,\"7\":40,\"10\":43,\"k0\":47,\"k1\":24,\"k2\":25,\"k3\":26,\"k4\":2"
       "7,\"k5\":42,\"k6\":29,\"k7\":30,\"k8\":31,\"k9\":32,\"k10\":33,\"k11\":34,\"k12\":35,"
       "\"k13\":36,\"k14\":37,\"k15\":38,\"k16\":39,\"k17\":17,\"k18\":18,\"k19\":19,\"k20\":2"
       "0,\"k21\":21,\"k22\":22,\"z\":45}")},
    {S("{\"m00\":0,\"m01\":1,\"m02\":2,\"m03\":3,\"m04\":4,\"m05\":5,\"m06\":6,\"m07\":7,\"m08"
       "\":8,\"m09\":9,\"m10\":10,\"m11\":11,\"m12\":12,\"m13\":13,\"m14\":14,\"m15\":15,\"m16"
       "\":16,\"m17\":17,\"m18\":18,\"m19\":19,\"m20\":20,\"m21\":21,\"m22\":22,\"m23\":23,\"m"
       "24\":24,\"m25\":25,\"m26\":26,\"m27\":27,\"m28\":28,\"m29\":29,\"m00\":30,\"m29\":31,"
       "\"5\":32}"),
     S("{\"5\":32,\"m00\":30,\"m01\":1,\"m02\":2,\"m03\":3,\"m04\":4,\"m05\":5,\"m06\":6,\"m07"
       "\":7,\"m08\":8,\"m09\":9,\"m10\":10,\"m11\":11,\"m12\":12,\"m13\":13,\"m14\":14,\"m15"
       "\":15,\"m16\":16,\"m17\":17,\"m18\":18,\"m19\":19,\"m20\":20,\"m21\":21,\"m22\":22,\"m"
       "23\":23,\"m24\":24,\"m25\":25,\"m26\":26,\"m27\":27,\"m28\":28,\"m29\":31}")},
};

/* JSON.parse throws a SyntaxError on each. */
static const struct pcase compact_invalid[] = {
    {S(""), NULL, 0},
    {S(" "), NULL, 0},
    {S("[1,]"), NULL, 0},
    {S("{\"a\":1,}"), NULL, 0},
    {S("[,1]"), NULL, 0},
    {S("[1,,2]"), NULL, 0},
    {S("{,}"), NULL, 0},
    {S("{\"a\"}"), NULL, 0},
    {S("{\"a\":}"), NULL, 0},
    {S("{\"a\" 1}"), NULL, 0},
    {S("{a:1}"), NULL, 0},
    {S("{'a':1}"), NULL, 0},
    {S("'x'"), NULL, 0},
    {S("[1 2]"), NULL, 0},
    {S("{\"a\":1 \"b\":2}"), NULL, 0},
    {S("NaN"), NULL, 0},
    {S("-NaN"), NULL, 0},
    {S("Infinity"), NULL, 0},
    {S("-Infinity"), NULL, 0},
    {S("nan"), NULL, 0},
    {S("inf"), NULL, 0},
    {S("01"), NULL, 0},
    {S("00"), NULL, 0},
    {S("-01"), NULL, 0},
    {S("1."), NULL, 0},
    {S(".5"), NULL, 0},
    {S("-.5"), NULL, 0},
    {S("+1"), NULL, 0},
    {S("1e"), NULL, 0},
    {S("1e+"), NULL, 0},
    {S("1E-"), NULL, 0},
    {S("0x10"), NULL, 0},
    {S("1.e5"), NULL, 0},
    {S("- 1"), NULL, 0},
    {S("--1"), NULL, 0},
    {S("1_000"), NULL, 0},
    {S("tru"), NULL, 0},
    {S("true1"), NULL, 0},
    {S("nul"), NULL, 0},
    {S("nulll"), NULL, 0},
    {S("falsee"), NULL, 0},
    {S("True"), NULL, 0},
    {S("NULL"), NULL, 0},
    {S("["), NULL, 0},
    {S("]"), NULL, 0},
    {S("{"), NULL, 0},
    {S("}"), NULL, 0},
    {S("[[]"), NULL, 0},
    {S("[]]"), NULL, 0},
    {S("{\"a\":1}}"), NULL, 0},
    {S("\"abc"), NULL, 0},
    {S("\"\\\""), NULL, 0},
    {S("\"\\x41\""), NULL, 0},
    {S("\"\\u12\""), NULL, 0},
    {S("\"\\u12G4\""), NULL, 0},
    {S("\"\\U0041\""), NULL, 0},
    {S("\"\\a\""), NULL, 0},
    {S("\"\\0\""), NULL, 0},
    {S("\"\\'\""), NULL, 0},
    {S("\"\011\""), NULL, 0},
    {S("\"\012\""), NULL, 0},
    {S("\"a\015b\""), NULL, 0},
    {S("\"\000\""), NULL, 0},
    {S("\"\037\""), NULL, 0},
    {S("1 2"), NULL, 0},
    {S("[] []"), NULL, 0},
    {S("{}x"), NULL, 0},
    {S("\"a\"b"), NULL, 0},
    {S("null,"), NULL, 0},
    {S("[1]//"), NULL, 0},
    {S("/*x*/1"), NULL, 0},
    {S("\357\273\277{}"), NULL, 0},
    {S("\302\240[]"), NULL, 0},
    {S("[1\302\240]"), NULL, 0},
    {S("{\"a\":1}\000"), NULL, 0},
    {S("[\013]"), NULL, 0},
    {S("[\014]"), NULL, 0},
    {S("\"\\u\""), NULL, 0},
    {S("\"\\"), NULL, 0},
    {S("[1,2"), NULL, 0},
    {S("{\"a\":[}"), NULL, 0},
    {S("{\"a\":1,\"b\"}"), NULL, 0},
    {S("[-]"), NULL, 0},
    {S("[1e5.5]"), NULL, 0},
    {S("[1.5.5]"), NULL, 0},
    {S("[0.]"), NULL, 0},
    {S("[1e1.0]"), NULL, 0},
    {S("undefined"), NULL, 0},
    {S("[undefined]"), NULL, 0},
    {S("{\"a\":undefined}"), NULL, 0},
};

/* Expected: the data value's source bytes; node checked that they parse to
 * JSON.parse(in).data. */
static const struct pcase data_cases[] = {
    {S("{\"data\":{\"a\":1}}"), S("{\"a\":1}")},
    {S("{\"id\":\"e1\",\"data\" : [ 1, 2 ] ,\"type\":\"t\"}"), S("[ 1, 2 ]")},
    {S("{\"data\":\012\011{ \"x\" : 1.0 }\012}"), S("{ \"x\" : 1.0 }")},
    {S("{\"data\":1,\"data\":\"second\"}"), S("\"second\"")},
    {S("{\"d\\u0061ta\":\"escaped key\",\"x\":1}"), S("\"escaped key\"")},
    {S("{\"data\":1,\"d\\u0061ta\":2}"), S("2")},
    {S("{\"data\":null}"), S("null")},
    {S("{\"data\":\"a\\\"b\\u0041\"}"), S("\"a\\\"b\\u0041\"")},
    {S("{\"data\":1e400}"), S("1e400")},
    {S("{\"data\":-0.0}"), S("-0.0")},
    {S("{\"x\":{\"data\":1},\"data\":false}"), S("false")},
    {S(" {\"data\":{\"data\":{\"data\":3}}} "), S("{\"data\":{\"data\":3}}")},
    {S("{\"a\":[{\"data\":1}],\"data\":[{\"data\":2}]}"), S("[{\"data\":2}]")},
    {S("{\"data\":{\"1\":2,\"0\":1,\"a\":1,\"a\":2}}"), S("{\"1\":2,\"0\":1,\"a\":1,\"a\":2}")},
};

static const struct pcase data_invalid[] = {
    {S("{\"x\":{\"data\":1}}"), NULL, 0},
    {S("{}"), NULL, 0},
    {S("[{\"data\":1}]"), NULL, 0},
    {S("\"data\""), NULL, 0},
    {S("{\"Data\":1}"), NULL, 0},
    {S("{\"data \":1}"), NULL, 0},
    {S("{\"data\":1,}"), NULL, 0},
    {S("{\"data\":1} x"), NULL, 0},
    {S("{\"data\":[1,}"), NULL, 0},
    {S("null"), NULL, 0},
    {S(""), NULL, 0},
    {S("{\"dat\":1,\"a\":2}"), NULL, 0},
    {S("{\"data\":01}"), NULL, 0},
};

/* Expected = JSON.stringify({message: in}); node checked JSON.parse(out).message === in. */
static const struct pcase message_cases[] = {
    {S("{\"id\":\"e1\",\"type\":\"t\",\"data\":{\"a\":1}}"),
     S("{\"message\":\"{\\\"id\\\":\\\"e1\\\",\\\"type\\\":\\\"t\\\",\\\"data\\\":{\\\"a\\\":1"
       "}}\"}")},
    {S(" { \"a\" : \"b\\\"c\" ,\012\011\"d\":[1.0, -0, 1e400] } \012"),
     S("{\"message\":\" { \\\"a\\\" : \\\"b\\\\\\\"c\\\" ,\\n\\t\\\"d\\\":[1.0, -0, 1e400] } "
       "\\n\"}")},
    {S("{\"s\":\"\\u0000\\n\\t\\\\ \303\251 \360\237\230\200 \342\200\250 \\ud800 /\\/\"}"),
     S("{\"message\":\"{\\\"s\\\":\\\"\\\\u0000\\\\n\\\\t\\\\\\\\ \303\251 \360\237\230\200 "
       "\342\200\250 \\\\ud800 /\\\\/\\\"}\"}")},
    {S("{\"raw\":\"\346\227\245\346\234\254\177\"}"),
     S("{\"message\":\"{\\\"raw\\\":\\\"\346\227\245\346\234\254\177\\\"}\"}")},
    {S("[]"), S("{\"message\":\"[]\"}")},
    {S("\"plain\""), S("{\"message\":\"\\\"plain\\\"\"}")},
    {S("123"), S("{\"message\":\"123\"}")},
    {S("null"), S("{\"message\":\"null\"}")},
    {S("{\"x\":\"\\u001f\"}\015\012"), S("{\"message\":\"{\\\"x\\\":\\\"\\\\u001f\\\"}\\r\\n\"}")},
};

static const struct pcase message_invalid[] = {
    {S("{\"a\":1"), NULL, 0},         {S(""), NULL, 0},     {S("NaN"), NULL, 0},
    {S("{\"a\":\"\011\"}"), NULL, 0}, {S("[1,]"), NULL, 0},
};

/* ---- helpers ------------------------------------------------------------ */

static void print_case(const char *what, size_t i, const struct pcase *c, int rc,
                       const struct buf *out)
{
    print_error("%s case %zu: input '%.*s'\n  want '%.*s'\n  got  rc %d '%.*s'\n", what, i,
                (int)c->inlen, c->in, c->out ? (int)c->outlen : 6, c->out ? c->out : "<fail>", rc,
                (int)out->len, out->data ? out->data : "");
}

/* Runs a table through one mode; each success is compared byte for byte. */
static void run_table(const char *what, enum payload_mode mode, const struct pcase *cases, size_t n)
{
    size_t bad = 0;

    for (size_t i = 0; i < n; i++) {
        const struct pcase *c = &cases[i];
        struct buf out;
        int rc;

        buf_init(&out, BIG);
        rc = payload_render(mode, c->in, c->inlen, &out);
        if (c->out ? (rc != 0 || out.len != c->outlen || memcmp(out.data, c->out, out.len) != 0)
                   : (rc != HERALD_EPARSE || out.len != 0)) {
            print_case(what, i, c, rc, &out);
            bad++;
        }
        buf_release(&out);
    }
    assert_int_equal(bad, 0);
}

static int compact(const char *in, size_t len, struct buf *out)
{
    buf_reset(out);
    return payload_json_compact(in, len, out);
}

/* ---- compact ------------------------------------------------------------ */

static void test_compact_numbers(void **state)
{
    (void)state;
    run_table("number", PAYLOAD_COMPACT, compact_numbers, N(compact_numbers));
}

static void test_compact_strings(void **state)
{
    (void)state;
    run_table("string", PAYLOAD_COMPACT, compact_strings, N(compact_strings));
}

static void test_compact_structures(void **state)
{
    (void)state;
    run_table("structure", PAYLOAD_COMPACT, compact_structures, N(compact_structures));
}

static void test_compact_invalid(void **state)
{
    (void)state;
    run_table("invalid", PAYLOAD_COMPACT, compact_invalid, N(compact_invalid));
}

/* The compact output is a fixed point, as JSON.stringify(JSON.parse(x)) is. */
static void test_compact_idempotent(void **state)
{
    const struct pcase *tables[] = {compact_numbers, compact_strings, compact_structures};
    const size_t sizes[] = {N(compact_numbers), N(compact_strings), N(compact_structures)};
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    for (size_t t = 0; t < N(tables); t++) {
        for (size_t i = 0; i < sizes[t]; i++) {
            const struct pcase *c = &tables[t][i];
            assert_int_equal(compact(c->out, c->outlen, &out), 0);
            assert_memory_equal(out.data, c->out, c->outlen);
            assert_int_equal(out.len, c->outlen);
        }
    }
    buf_release(&out);
}

/* herald's choice: bytes that are not UTF-8 are not JSON text (RFC 8259 8.1),
 * where a JavaScript receiver would have decoded them to U+FFFD. */
static void test_compact_invalid_utf8(void **state)
{
    static const struct pcase cases[] = {
        {S("\"\x80\""), NULL, 0}, /* lone continuation byte */
        {S("\"\xbf\""), NULL, 0},
        {S("\"\xc0\x80\""), NULL, 0},                 /* overlong NUL */
        {S("\"\xc1\xbf\""), NULL, 0},                 /* overlong 2-byte */
        {S("\"\xe0\x80\xaf\""), NULL, 0},             /* overlong 3-byte '/' */
        {S("\"\xe0\x9f\xbf\""), NULL, 0},             /* overlong U+07FF */
        {S("\"\xf0\x8f\xbf\xbf\""), NULL, 0},         /* overlong U+FFFF */
        {S("\"\xed\xa0\x80\""), NULL, 0},             /* encoded surrogate U+D800 */
        {S("\"\xed\xbf\xbf\""), NULL, 0},             /* encoded surrogate U+DFFF */
        {S("\"\xed\xa0\xbd\xed\xb8\x80\""), NULL, 0}, /* CESU-8 pair */
        {S("\"\xf4\x90\x80\x80\""), NULL, 0},         /* U+110000 */
        {S("\"\xf5\x80\x80\x80\""), NULL, 0},
        {S("\"\xff\""), NULL, 0},
        {S("\"\xfe\""), NULL, 0},
        {S("\"\xc3\""), NULL, 0},         /* truncated 2-byte */
        {S("\"\xe6\x97\""), NULL, 0},     /* truncated 3-byte */
        {S("\"\xf0\x9f\x98\""), NULL, 0}, /* truncated 4-byte */
        {S("\"\xc3"), NULL, 0},           /* truncated at end of input */
        {S("\"\xc3\x28\""), NULL, 0},     /* bad continuation */
        {S("\"\xe2\x28\xa1\""), NULL, 0},
        {S("[\xc3\xa9]"), NULL, 0},     /* non-ASCII outside a string */
        {S("\xef\xbb\xbf{}"), NULL, 0}, /* UTF-8 byte order mark */
        {S("{\"\xff\":1}"), NULL, 0},   /* in a key */
    };
    /* The edges of each valid range are accepted and kept as they are. */
    static const struct pcase edges[] = {
        {S("\"\xc2\x80\xdf\xbf\""), S("\"\xc2\x80\xdf\xbf\"")},
        {S("\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\""),
         S("\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"")},
        {S("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""), S("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"")},
    };

    (void)state;
    run_table("utf-8", PAYLOAD_COMPACT, cases, N(cases));
    run_table("utf-8 message", PAYLOAD_MESSAGE, cases, N(cases));
    run_table("utf-8 edges", PAYLOAD_COMPACT, edges, N(edges));
}

/* A document of depth nested containers, each spelled by open/close. */
static char *nested(size_t depth, const char *open, const char *close, const char *core,
                    size_t *len)
{
    size_t lo = strlen(open), lc = strlen(close), lcore = strlen(core);
    char *s = malloc(depth * (lo + lc) + lcore + 1);
    char *p = s;

    assert_non_null(s);
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, core, lcore);
    p += lcore;
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    *len = (size_t)(p - s);
    return s;
}

/* herald's choice: JSON.parse nests until the stack runs out; herald stops at
 * MAX_DEPTH so hostile input cannot exhaust the worker's stack. */
static void test_compact_depth(void **state)
{
    /* Each shape nests per containers per level around a core that holds
     * core_depth more; levels are chosen to make exactly MAX_DEPTH. */
    static const struct {
        const char *open, *close, *core;
        size_t per, core_depth;
    } shapes[] = {{"[", "]", "", 1, 0},
                  {"[", "]", "1", 1, 0},
                  {"{\"a\":", "}", "{}", 1, 1},
                  {"[{\"k\":", "}]", "0", 2, 0}};
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    for (size_t i = 0; i < N(shapes); i++) {
        size_t levels = (MAX_DEPTH - shapes[i].core_depth) / shapes[i].per, len;
        char *s = nested(levels, shapes[i].open, shapes[i].close, shapes[i].core, &len);

        assert_int_equal(compact(s, len, &out), 0);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, s, len);
        free(s);
        /* One level more is refused, and so is something absurdly deep. */
        s = nested(levels + 1, shapes[i].open, shapes[i].close, shapes[i].core, &len);
        assert_int_equal(compact(s, len, &out), HERALD_EPARSE);
        free(s);
        s = nested(100000, shapes[i].open, shapes[i].close, shapes[i].core, &len);
        assert_int_equal(compact(s, len, &out), HERALD_EPARSE);
        assert_int_equal(payload_render(PAYLOAD_MESSAGE, s, len, &out), HERALD_EPARSE);
        assert_int_equal(payload_render(PAYLOAD_DATA, s, len, &out), HERALD_EPARSE);
        free(s);
    }
    buf_release(&out);
}

/* Invalid input with NUL bytes and truncations: lengths, not terminators. */
static void test_compact_lengths(void **state)
{
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    assert_int_equal(compact("[1]", 3, &out), 0);
    assert_int_equal(compact("[1]", 2, &out), HERALD_EPARSE);
    assert_int_equal(compact("12", 1, &out), 0);
    assert_string_equal(out.data, "1");
    assert_int_equal(compact("1.5", 2, &out), HERALD_EPARSE);
    assert_int_equal(compact("1e5", 2, &out), HERALD_EPARSE);
    assert_int_equal(compact("true", 3, &out), HERALD_EPARSE);
    assert_int_equal(compact("\"\\u0041\"", 7, &out), HERALD_EPARSE);
    assert_int_equal(compact("[1]\0", 4, &out), HERALD_EPARSE);
    assert_int_equal(compact("\0", 1, &out), HERALD_EPARSE);
    assert_int_equal(compact("", 0, &out), HERALD_EPARSE);
    assert_int_equal(compact(NULL, 0, &out), HERALD_EPARSE);
    buf_release(&out);
}

/* Long numbers take the heap path for strtod; the result must not change. */
static void test_compact_long_numbers(void **state)
{
    struct buf in, out;

    (void)state;
    buf_init(&in, BIG);
    buf_init(&out, BIG);
    assert_int_equal(buf_appends(&in, "[0."), 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(buf_appendc(&in, '0'), 0);
    assert_int_equal(buf_appends(&in, "125,1"), 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(buf_appendc(&in, '0'), 0);
    assert_int_equal(buf_appends(&in, ".5e-380,1"), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(buf_appendc(&in, '0'), 0);
    assert_int_equal(buf_appends(&in, "]"), 0);
    assert_int_equal(compact(in.data, in.len, &out), 0);
    /* node: JSON.stringify(JSON.parse(same text)). */
    assert_string_equal(out.data, "[0,100000000000000000000,1e+300]");
    buf_release(&in);
    buf_release(&out);
}

/* ---- data, message, raw ------------------------------------------------- */

static void test_data(void **state)
{
    (void)state;
    run_table("data", PAYLOAD_DATA, data_cases, N(data_cases));
    run_table("data invalid", PAYLOAD_DATA, data_invalid, N(data_invalid));
}

static void test_message(void **state)
{
    (void)state;
    run_table("message", PAYLOAD_MESSAGE, message_cases, N(message_cases));
    run_table("message invalid", PAYLOAD_MESSAGE, message_invalid, N(message_invalid));
}

static void test_raw(void **state)
{
    static const char junk[] = "not json \0 \xff at all";
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    /* Raw is the bytes as consumed; the event parser has already judged them. */
    assert_int_equal(payload_render(PAYLOAD_RAW, junk, sizeof(junk) - 1, &out), 0);
    assert_int_equal(out.len, sizeof(junk) - 1);
    assert_memory_equal(out.data, junk, sizeof(junk) - 1);
    buf_reset(&out);
    assert_int_equal(payload_render(PAYLOAD_RAW, " {\"a\" : 1.0} ", 13, &out), 0);
    assert_string_equal(out.data, " {\"a\" : 1.0} ");
    buf_release(&out);
}

/* ---- the buffer contract ------------------------------------------------ */

/* Renders append, and a failed render leaves the buffer as it was. */
static void test_append_and_restore(void **state)
{
    static const char ev[] = "{\"data\":[1.0],\"id\":\"x\"}";
    enum payload_mode modes[] = {PAYLOAD_RAW, PAYLOAD_COMPACT, PAYLOAD_DATA, PAYLOAD_MESSAGE};
    const char *want[] = {"pre:{\"data\":[1.0],\"id\":\"x\"}", "pre:{\"data\":[1],\"id\":\"x\"}",
                          "pre:[1.0]",
                          "pre:{\"message\":\"{\\\"data\\\":[1.0],\\\"id\\\":\\\"x\\\"}\"}"};
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    for (size_t i = 0; i < N(modes); i++) {
        buf_reset(&out);
        assert_int_equal(buf_appends(&out, "pre:"), 0);
        assert_int_equal(payload_render(modes[i], ev, sizeof(ev) - 1, &out), 0);
        assert_string_equal(out.data, want[i]);

        buf_reset(&out);
        assert_int_equal(buf_appends(&out, "pre:"), 0);
        /* Valid up to a late error, so some output may have been written. */
        if (modes[i] != PAYLOAD_RAW) {
            assert_int_equal(payload_render(modes[i], "{\"data\":[1,2],\"x\":[1,]}", 23, &out),
                             HERALD_EPARSE);
            assert_int_equal(out.len, 4);
            assert_string_equal(out.data, "pre:");
        }
    }
    buf_release(&out);
}

static void test_too_big(void **state)
{
    static const char ev[] = "{\"data\":\"abcdefghijklmnopqrstuvwxyz\",\"n\":1e21}";
    enum payload_mode modes[] = {PAYLOAD_RAW, PAYLOAD_COMPACT, PAYLOAD_DATA, PAYLOAD_MESSAGE};
    struct buf out;

    (void)state;
    for (size_t i = 0; i < N(modes); i++) {
        buf_init(&out, 20);
        assert_int_equal(buf_appends(&out, "12345"), 0);
        assert_int_equal(payload_render(modes[i], ev, sizeof(ev) - 1, &out), HERALD_ETOOBIG);
        assert_string_equal(out.data, "12345");
        buf_release(&out);
    }
    /* Exactly at the limit fits: "1e21" grows to "1e+21". */
    buf_init(&out, 5);
    assert_int_equal(payload_json_compact("1e21", 4, &out), 0);
    assert_string_equal(out.data, "1e+21");
    buf_release(&out);
    buf_init(&out, 4);
    assert_int_equal(payload_json_compact("1e21", 4, &out), HERALD_ETOOBIG);
    buf_release(&out);
}

static void test_bad_arguments(void **state)
{
    struct buf out;

    (void)state;
    buf_init(&out, BIG);
    assert_int_equal(payload_json_compact(NULL, 3, &out), HERALD_EINVAL);
    assert_int_equal(payload_json_compact("[]", 2, NULL), HERALD_EINVAL);
    assert_int_equal(payload_render(PAYLOAD_RAW, NULL, 1, &out), HERALD_EINVAL);
    assert_int_equal(payload_render((enum payload_mode)42, "[]", 2, &out), HERALD_EINVAL);
    assert_int_equal(out.len, 0);
    buf_release(&out);
}

/* ---- mode names --------------------------------------------------------- */

static void test_mode_names(void **state)
{
    static const struct {
        const char *name;
        enum payload_mode mode;
    } modes[] = {{"raw", PAYLOAD_RAW},
                 {"compact", PAYLOAD_COMPACT},
                 {"data", PAYLOAD_DATA},
                 {"message", PAYLOAD_MESSAGE}};
    static const char *bad[] = {"", "RAW", "Raw", "compact ", " data", "messages", "json"};
    enum payload_mode mode = PAYLOAD_MESSAGE;

    (void)state;
    for (size_t i = 0; i < N(modes); i++) {
        assert_int_equal(payload_mode_parse(modes[i].name, &mode), 0);
        assert_int_equal(mode, modes[i].mode);
        assert_string_equal(payload_mode_name(modes[i].mode), modes[i].name);
    }
    for (size_t i = 0; i < N(bad); i++)
        assert_int_equal(payload_mode_parse(bad[i], &mode), HERALD_EINVAL);
    assert_int_equal(payload_mode_parse(NULL, &mode), HERALD_EINVAL);
    assert_int_equal(payload_mode_parse("raw", NULL), HERALD_EINVAL);
    assert_string_equal(payload_mode_name((enum payload_mode)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_numbers),
        cmocka_unit_test(test_compact_strings),
        cmocka_unit_test(test_compact_structures),
        cmocka_unit_test(test_compact_invalid),
        cmocka_unit_test(test_compact_idempotent),
        cmocka_unit_test(test_compact_invalid_utf8),
        cmocka_unit_test(test_compact_depth),
        cmocka_unit_test(test_compact_lengths),
        cmocka_unit_test(test_compact_long_numbers),
        cmocka_unit_test(test_data),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_append_and_restore),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_mode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
