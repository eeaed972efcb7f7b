"""Native tests of the example (no host, no component): `python3 -m unittest`."""
import unittest

from logai_plugin import InvalidArgument
from logai_plugin.testing import TestHost

import app


class HelloTest(unittest.TestCase):
    def test_greets(self):
        text, _, is_error = TestHost().call(app.hello, {"name": "Ada", "shout": True})
        self.assertTrue(text.startswith("HELLO, ADA!"))
        self.assertFalse(is_error)

    def test_wrong_type_names_the_path(self):
        with self.assertRaises(InvalidArgument) as e:
            TestHost().call(app.hello, {"name": 5})
        self.assertEqual(e.exception.path, "$.name")

    def test_word_count_logs_and_answers_structured(self):
        host = TestHost()
        text, structured, _ = host.call(app.word_count, {"text": "a b a", "top": 1})
        self.assertEqual(text, "1 lines, 3 words, 5 characters, 5 bytes")
        self.assertEqual(structured["top_words"], [{"word": "a", "count": 2}])
        self.assertEqual(host.logs, [("debug", "word_count: 3 words for test@local")])

    def test_schema(self):
        name, schema, _ = TestHost.specs([app.hello])[0]
        self.assertEqual(name, "hello")
        self.assertEqual(schema["required"], ["name"])
        self.assertEqual(schema["properties"]["name"], {"type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet."})


if __name__ == "__main__":
    unittest.main()
