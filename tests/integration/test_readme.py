#!/usr/bin/python3
"""Keeps the README true: the configuration table is exactly what herald's key
table generates, every key herald accepts is documented, and the two commands
the README opens with exist and are executable."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HERALD  # noqa: E402

ROOT = os.environ.get("HERALD_SOURCE_DIR",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            self.readme = f.read()

    def test_config_table_matches_the_binary(self):
        table = subprocess.run([HERALD, "--help-config-markdown"], check=True,
                               capture_output=True, text=True).stdout
        m = re.search(r"<!-- config-table:begin -->\n(.*?)<!-- config-table:end -->",
                      self.readme, re.S)
        self.assertIsNotNone(m, "README has no config-table markers")
        self.assertEqual(m.group(1), table,
                         "README config table is stale: run scripts/update-readme")

    def test_every_key_is_documented(self):
        help_text = subprocess.run([HERALD, "--help-config"], check=True, capture_output=True,
                                   text=True).stdout
        keys = re.findall(r"^([a-z_]+\.[a-z_.]+)\s", help_text, re.M)
        self.assertGreater(len(keys), 20)
        for key in keys:
            self.assertIn("`%s`" % key, self.readme, "config key %s missing" % key)

    def test_opens_with_the_two_commands(self):
        head = self.readme[:1500]
        for cmd in ("scripts/demo", "scripts/test"):
            self.assertIn(cmd, head)
            self.assertTrue(os.access(os.path.join(ROOT, cmd), os.X_OK), cmd)
        self.assertTrue(os.access(os.path.join(ROOT, ".ci", "run"), os.X_OK))


if __name__ == "__main__":
    unittest.main(verbosity=2)
