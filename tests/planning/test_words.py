from app.planning.words import Vocabulary, without_polite_lead

COLOURS = Vocabulary({"warm": r"red|orange|dark\s+red", "cold": r"blue|dark\s+blue"})


class TestVocabulary:
    def test_lead_reads_only_the_start_of_the_text(self):
        assert COLOURS.lead("Red sky at night") == "warm"
        assert COLOURS.lead("The red sky") is None

    def test_first_gives_the_earliest_key_named(self):
        assert COLOURS.first("a blue sea under an orange sun") == "cold"

    def test_named_gives_every_key_named(self):
        assert COLOURS.named("red and blue") == {"warm", "cold"}

    def test_words_must_be_whole(self):
        assert COLOURS.named("bored with blueprints") == set()

    def test_phrases_match_across_any_whitespace(self):
        assert COLOURS.first("a dark\n  blue coat") == "cold"

    def test_lead_match_tells_where_the_words_end(self):
        match = COLOURS.lead_match("orange juice")
        assert match is not None
        assert match.end() == len("orange")


class TestPoliteLead:
    def test_polite_openings_are_removed(self):
        assert without_polite_lead("  Please fix it") == "fix it"
        assert without_polite_lead("could you please add search") == "add search"

    def test_other_openings_are_kept(self):
        assert without_polite_lead("Pleased users") == "Pleased users"
