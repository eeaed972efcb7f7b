"""Native unit tests (no host, no component): python -m unittest"""
import unittest

from logai_plugin import InvalidArgument
from logai_plugin.testing import TestHost

import app


class HelloTest(unittest.TestCase):
    def test_greets_and_logs(self):
        host = TestHost()
        text, _, is_error = host.call(app.hello, {"name": "Ada", "shout": True})
        self.assertEqual((text, is_error), ("HELLO, ADA!", False))
        self.assertEqual(host.logs, [("info", "greeting Ada for test@local")])

    def test_a_wrong_argument_names_its_path(self):
        with self.assertRaises(InvalidArgument) as e:
            TestHost().call(app.hello, {"name": 5})
        self.assertEqual(e.exception.path, "$.name")


if __name__ == "__main__":
    unittest.main()
