"""The iskdaemon API scenario, driven by Python's own XML-RPC client as an independent
client. Prints one JSON line per check and exits 1 if any failed.

usage: iskdaemon_scenario.py --url http://127.0.0.1:PORT/RPC --images DIR [--shutdown URL]
DIR must hold at least 6 JPEG files and lie inside the server's allowed directories.
"""
import argparse
import base64
import json
import os
import sys
import urllib.parse
import xmlrpc.client

failures = 0


def check(name, got, want=None, ok=None):
    global failures
    passed = (got == want) if ok is None else bool(ok)
    if not passed:
        failures += 1
    print(json.dumps({"check": name, "ok": passed, "got": repr(got)[:200], "want": repr(want)[:200]}), flush=True)


def fault_of(call):
    try:
        call()
    except xmlrpc.client.Fault as fault:
        return fault
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--shutdown")
    args = parser.parse_args()
    isk = xmlrpc.client.ServerProxy(args.url)
    files = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if f.lower().endswith(".jpg"))[:6]
    data = [open(f, "rb").read() for f in files]
    db = 1

    check("createDb returns the id", isk.createDb(db), db)
    check("addImg by path returns 1", isk.addImg(db, 1, files[0]), 1)
    check("addImg by path returns 1 (2)", isk.addImg(db, 2, files[1]), 1)
    check("addImgBlob with <base64> returns 1", isk.addImgBlob(db, 3, xmlrpc.client.Binary(data[2])), 1)
    check("addImgBlob with base64 text in a <string> returns 1", isk.addImgBlob(db, 4, base64.b64encode(data[3]).decode()), 1)
    check("getDbImgCount", isk.getDbImgCount(db), 4)
    check("isImgOnDb true", isk.isImgOnDb(db, 3), True)
    check("isImgOnDb false", isk.isImgOnDb(db, 99), False)
    check("getDbImgIdList", sorted(isk.getDbImgIdList(db)), [1, 2, 3, 4])
    dims = isk.getImgDimensions(db, 1)
    check("getImgDimensions is [width, height]", dims, None, ok=isinstance(dims, list) and len(dims) == 2 and all(isinstance(v, int) and v > 0 for v in dims))

    results = isk.queryImgID(db, 2)
    # A self-match scores 100 only when its coefficient weights add up past 38.70.
    check("queryImgID: the image itself first, with the best score", results[0][0], 2)
    check("queryImgID: scores within 0..100", None, None, ok=all(0.0 <= r[1] <= 100.0 for r in results))
    check("queryImgID: [id, float score] pairs, best first", None, None,
          ok=all(isinstance(r[1], float) for r in results) and [r[1] for r in results] == sorted((r[1] for r in results), reverse=True))
    check("queryImgID: numres+1 results at most", len(isk.queryImgID(db, 2, 2)), 3)
    check("queryImgID(dbId, id, numres, fast), iskdaemon 0.9.2's form", isk.queryImgID(db, 2, 3, True), isk.queryImgID(db, 2, 3, 0, True))
    check("queryImgBlob finds the same image", isk.queryImgBlob(db, xmlrpc.client.Binary(data[0]), 3)[0][0], 1)
    check("queryImgBlob with base64 text", isk.queryImgBlob(db, base64.b64encode(data[3]).decode(), 3)[0][0], 4)
    check("queryImgPath", isk.queryImgPath(db, files[1], 3)[0][0], 2)
    check("calcImgDiff is a float, self most similar", None, None,
          ok=isinstance(isk.calcImgDiff(db, 1, 1), float) and isk.calcImgDiff(db, 1, 1) < isk.calcImgDiff(db, 1, 2))
    check("calcImgAvglDiff of an image with itself", isk.calcImgAvglDiff(db, 1, 1), 0.0)

    check("addKeywordImg", isk.addKeywordImg(db, 1, 7), True)
    check("addKeywordsImg", isk.addKeywordsImg(db, 2, [7, 8]), True)
    check("getKeywordsImg", sorted(isk.getKeywordsImg(db, 2)), [7, 8])
    check("getAllImgsByKeywords AND", sorted(isk.getAllImgsByKeywords(db, 10, 1, "7,8")), [2])
    check("getAllImgsByKeywords OR", sorted(isk.getAllImgsByKeywords(db, 10, 0, "7,8")), [1, 2])
    check("queryImgIDKeywords among keyword holders", sorted(r[0] for r in isk.queryImgIDKeywords(db, 1, 10, 0, "7")), [1, 2])
    check("mostPopularKeywords", isk.mostPopularKeywords(db, "1,2", "", 5, 0), [7, 2, 8, 1])
    check("removeKeywordImg", isk.removeKeywordImg(db, 2, 7), True)
    check("removeAllKeywordImg", isk.removeAllKeywordImg(db, 2), True)
    check("keywords gone", isk.getKeywordsImg(db, 2), [])

    check("removeImg returns 1", isk.removeImg(db, 4), 1)
    check("count after removeImg", isk.getDbImgCount(db), 3)
    isk.addImgBlob(db, 4, xmlrpc.client.Binary(data[4]))
    # iskdaemon's own save-point test: add 4, saveAllDbs, resetDb -> 0, loadAllDbs -> 4.
    check("four images before the save point", isk.getDbImgCount(db), 4)
    isk.saveAllDbs()
    check("resetDb returns 1", isk.resetDb(db), 1)
    check("count after resetDb", isk.getDbImgCount(db), 0)
    isk.loadAllDbs()
    check("count after loadAllDbs", isk.getDbImgCount(db), 4)

    check("getDbList includes the space", db in isk.getDbList(), True)
    check("getDbDetailedList keyed by space id", isk.getDbDetailedList()[str(db)][0], 4)
    check("isValidDb", [isk.isValidDb(db), isk.isValidDb(12345)], [True, False])
    stats = isk.getGlobalServerStats()
    check("getGlobalServerStats has iskdaemon's keys", None, None, ok="Number of databases" in stats and "isk-daemon uptime" in stats)
    methods = isk.system.listMethods()
    wanted = ["queryImgID", "queryImgBlob", "queryImgPath", "addImg", "addImgBlob", "removeImg", "resetDb", "removeDb",
              "createDb", "getDbImgCount", "isImgOnDb", "getImgDimensions", "calcImgAvglDiff", "calcImgDiff", "getImgAvgl",
              "getDbList", "getDbDetailedList", "getDbImgIdList", "isValidDb", "getGlobalServerStats", "saveDb", "saveDbAs",
              "loadDb", "saveAllDbs", "loadAllDbs", "saveAllDbsAs", "loadAllDbsAs", "addDir", "shutdownServer",
              "addKeywordImg", "addKeywordsImg", "removeKeywordImg", "removeAllKeywordImg", "getKeywordsImg",
              "queryImgIDKeywords", "queryImgIDFastKeywords", "getAllImgsByKeywords", "mostPopularKeywords", "getIskLog",
              "system.listMethods", "system.methodHelp", "system.multicall"]
    check("system.listMethods lists every method", [m for m in wanted if m not in methods], [])
    multi = xmlrpc.client.MultiCall(isk)
    multi.getDbImgCount(db)
    multi.isValidDb(db)
    check("system.multicall", list(multi()), [4, True])

    for name, call in [
        ("unknown method", lambda: isk.noSuchMethod(1)),
        ("invalid base64 text", lambda: isk.addImgBlob(db, 9, "%%% not base64 %%%")),
        ("undecodable image", lambda: isk.addImgBlob(db, 9, xmlrpc.client.Binary(b"not an image"))),
        ("unknown database space", lambda: isk.getDbImgCount(777)),
    ]:
        fault = fault_of(call)
        check(f"fault: {name}", None, None, ok=fault is not None and len(fault.faultString) > 10)
    check("still serving after faults, nothing lost", isk.getDbImgCount(db), 4)
    # iskdaemon 0.9.5 answered a missing image with a plain "no" (its test_api.py checks these).
    check("queryImgID of a missing image is []", isk.queryImgID(db, 424242), [])
    check("removeImg of a missing image is 0", isk.removeImg(db, 424242), 0)
    check("isImgOnDb of a missing image is False", isk.isImgOnDb(db, 424242), False)
    check("addKeywordImg on a missing image is False", isk.addKeywordImg(db, 424242, 3), False)
    # Without the write key in the URL, writes and admin calls are refused (fault 10).
    anonymous = xmlrpc.client.ServerProxy(urllib.parse.urlunsplit(urllib.parse.urlsplit(args.url)._replace(netloc=urllib.parse.urlsplit(args.url).hostname + ":" + str(urllib.parse.urlsplit(args.url).port))))
    for name, call in [("resetDb", lambda: anonymous.resetDb(db)), ("removeImg", lambda: anonymous.removeImg(db, 1)),
                       ("addImgBlob", lambda: anonymous.addImgBlob(db, 99, xmlrpc.client.Binary(data[0])))]:
        fault = fault_of(call)
        check(f"anonymous {name} refused with fault 10", fault.faultCode if fault else None, 10)
    check("anonymous reads still answer", anonymous.getDbImgCount(db), 4)

    if args.shutdown:
        check("shutdownServer returns 1", xmlrpc.client.ServerProxy(args.shutdown).shutdownServer(), 1)

    print(json.dumps({"summary": f"{failures} failed"}))
    sys.exit(1 if failures else 0)


main()
