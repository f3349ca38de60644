import pytest

from app.planning import Agent, named_layers, sub_goals


class TestLists:
    def test_and_splits_two_features(self):
        assert sub_goals("Implement login and register features") == [
            "login",
            "register",
        ]

    @pytest.mark.parametrize(
        "task",
        [
            "Add search, filters and export",
            "Add search, filters, and export.",
            "Add search, filters & export",
        ],
    )
    def test_commas_and_and_split_a_list(self, task):
        assert sub_goals(task) == ["search", "filters", "export"]

    def test_a_fixed_pair_stays_whole(self):
        assert sub_goals("Implement drag and drop") == ["drag and drop"]

    def test_a_second_verb_is_dropped_before_a_determiner(self):
        assert sub_goals("Implement login and fix the export") == ["login", "export"]

    def test_repeated_items_are_dropped(self):
        assert sub_goals("Add search and Search") == ["search"]


class TestSingleGoals:
    def test_a_trailing_with_phrase_names_layers_not_goals(self):
        task = "Implement login feature with UI, backend, and tests"
        assert sub_goals(task) == ["login"]

    def test_a_with_phrase_is_never_split(self):
        assert sub_goals("Implement login with OAuth and SAML") == ["login"]

    def test_a_task_without_a_list_is_one_goal(self):
        assert sub_goals("Fix bug in node X") == ["bug in node X"]

    def test_a_bare_verb_has_no_goal(self):
        assert sub_goals("Refactor") == []


class TestSharedWords:
    def test_items_share_the_head_of_the_first(self):
        assert sub_goals("Add tests for the parser and the lexer") == [
            "parser",
            "lexer",
        ]

    def test_a_phrase_on_the_last_item_is_shared_context(self):
        assert sub_goals("Add search and filters to the dashboard") == [
            "search",
            "filters",
        ]

    def test_items_with_their_own_phrases_stay_whole(self):
        assert sub_goals("Add import from CSV and export to PDF") == [
            "import from CSV",
            "export to PDF",
        ]


class TestBlocks:
    def test_each_action_sentence_is_a_block(self):
        task = "Implement login. Add a register page. It should use OAuth."
        assert sub_goals(task) == ["login", "register page"]

    def test_bullets_and_numbered_lines_are_blocks(self):
        task = (
            "Implement the following:\n"
            "- login\n"
            "* password reset\n"
            "1. profile page\n"
            "2) settings"
        )
        assert sub_goals(task) == [
            "login",
            "password reset",
            "profile page",
            "settings",
        ]

    def test_a_task_without_action_sentences_is_one_block(self):
        assert sub_goals("Login and logout.") == ["Login", "logout"]


class TestLayers:
    def test_ui_backend_and_tests_name_three_layers(self):
        task = "Implement login feature with UI, backend, and tests"
        assert named_layers(task) == {Agent.ui, Agent.builder, Agent.quality}

    def test_webhooks_and_external_apis_name_the_integrations_layer(self):
        assert Agent.integrations in named_layers("Handle Stripe webhooks")
        assert named_layers("Call the external API") == {Agent.integrations}

    def test_integration_tests_name_only_the_tests_layer(self):
        assert named_layers("Add integration tests") == {Agent.quality}

    @pytest.mark.parametrize(
        "task",
        [
            "Restore the backup job",
            "Improve the performance of the importer",
            "Use the latest parser",
            "Rename the apiary module",
        ],
    )
    def test_words_inside_other_words_name_no_layer(self, task):
        assert named_layers(task) == frozenset()
