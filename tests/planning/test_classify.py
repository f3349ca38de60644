import pytest

from app.planning import TaskType, classify


class TestLeadingVerb:
    @pytest.mark.parametrize(
        ("task", "expected"),
        [
            ("Fix bug in node X", TaskType.fix),
            ("Implement login feature with UI, backend, and tests", TaskType.implement),
            ("Refactor the storage layer", TaskType.refactor),
            ("Research caching options", TaskType.research),
            ("Audit auth for vulnerabilities", TaskType.security),
            ("Extend the export to CSV", TaskType.extend),
            ("Integrate Stripe webhooks", TaskType.integration),
            ("Redesign the settings page", TaskType.ui),
            ("Document the public API", TaskType.docs),
            ("Test the retry logic", TaskType.test),
        ],
    )
    def test_a_deciding_verb_gives_its_type(self, task, expected):
        assert classify(task) == expected

    def test_the_verb_outweighs_topic_words_later_in_the_task(self):
        assert classify("Fix the broken tests on the settings page") == TaskType.fix

    def test_polite_openings_are_skipped(self):
        assert classify("Please refactor the importer") == TaskType.refactor
        assert classify("We need to fix the login crash") == TaskType.fix

    def test_case_does_not_matter(self):
        assert classify("FIX the crash") == TaskType.fix


class TestOpenVerbs:
    def test_the_first_topic_word_decides_after_an_open_verb(self):
        assert classify("Add tests for the parser") == TaskType.test
        assert classify("Write docs for the API") == TaskType.docs
        assert classify("Write docs for the tests") == TaskType.docs

    def test_an_open_verb_falls_back_to_its_own_type(self):
        assert classify("Add search, filters and export") == TaskType.extend
        assert classify("Create a billing service") == TaskType.implement

    def test_integration_tests_read_as_tests(self):
        assert classify("Add integration tests for billing") == TaskType.test


class TestNoMatch:
    def test_a_task_without_known_words_is_an_implement_task(self):
        assert classify("Something about the billing service") == TaskType.implement

    def test_other_word_forms_still_name_the_topic(self):
        assert classify("Fixes crash on start") == TaskType.fix


class TestSubstringTraps:
    def test_performance_is_not_a_form(self):
        task = "Improve the performance of the importer"
        assert classify(task) != TaskType.ui
        assert classify(task) == TaskType.refactor

    def test_restore_is_not_rest(self):
        task = "Restore the backup job"
        assert classify(task) != TaskType.integration
        assert classify(task) == TaskType.fix

    def test_latest_is_not_a_test(self):
        task = "Use the latest parser"
        assert classify(task) != TaskType.test
        assert classify(task) == TaskType.implement

    def test_prefix_is_not_a_fix(self):
        task = "Prefix all keys"
        assert classify(task) != TaskType.fix
        assert classify(task) == TaskType.implement

    def test_address_is_not_add(self):
        task = "Validate the address field"
        assert classify(task) != TaskType.extend
        assert classify(task) == TaskType.implement

    @pytest.mark.parametrize(
        ("task", "trapped"),
        [
            ("Contest scoring for the league", TaskType.test),
            ("Attestation of release builds", TaskType.test),
            ("Fixture loader for the importer", TaskType.fix),
            ("Prefixes for cache keys", TaskType.fix),
            ("Platform switcher in the settings", TaskType.ui),
            ("Readdress the billing totals", TaskType.extend),
            ("Interest rates from the restful feed", TaskType.integration),
        ],
    )
    def test_words_inside_other_words_never_match(self, task, trapped):
        assert classify(task) == TaskType.implement
        assert classify(task) != trapped
