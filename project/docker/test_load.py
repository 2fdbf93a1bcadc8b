"""The rules load.py counts by (run by project/docker/test.sh before the
Docker scenarios): what is lost, duplicated, never sent, a clear error."""

import unittest

from load import clear_error, outcome


def record(n, status, body=None):
    r = {"t": 0.0, "n": n, "status": status}
    if body is not None:
        r["body"] = body
    return r


class Outcome(unittest.TestCase):
    def test_each_acknowledged_request_stored_once_is_clean(self):
        records = [record(1, 202), record(2, 202)]
        self.assertEqual(outcome(records, {"1": 1, "2": 1}), (2, 0, 2, 0, 0, 0))

    def test_an_acknowledged_request_not_stored_is_lost(self):
        records = [record(1, 202), record(2, 202)]
        self.assertEqual(outcome(records, {"1": 1}), (2, 0, 1, 1, 0, 0))

    def test_a_request_stored_twice_is_duplicated_acknowledged_or_not(self):
        records = [record(1, 202), record(2, 504)]
        self.assertEqual(outcome(records, {"1": 2, "2": 3}), (1, 1, 2, 0, 3, 0))

    def test_a_failed_request_may_be_stored_once_or_not_at_all(self):
        records = [record(1, 504), record(2, 0)]
        self.assertEqual(outcome(records, {"1": 1}), (0, 2, 1, 0, 0, 0))

    def test_an_entry_no_request_sent_is_counted(self):
        self.assertEqual(outcome([record(1, 202)], {"1": 1, "9": 1}), (1, 0, 1, 0, 0, 1))


class ClearError(unittest.TestCase):
    def test_the_envelope_with_a_message_is_clear(self):
        self.assertTrue(clear_error(record(1, 504, '{"error":true,"message":"logger-service did not answer"}')))

    def test_anything_else_is_not(self):
        for body in (None, "", "no answer: timed out", "<html>502</html>", '{"error":false,"message":"ok"}',
                     '{"error":true}', '["error"]'):
            with self.subTest(body=body):
                self.assertFalse(clear_error(record(1, 502, body)))


if __name__ == "__main__":
    unittest.main()
