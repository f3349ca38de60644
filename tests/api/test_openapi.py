from pathlib import Path

from app.api.spec import openapi, rendered

COMMITTED = Path(__file__).parents[2] / "openapi" / "openapi.json"


class TestContract:
    def test_the_committed_spec_matches_the_app(self) -> None:
        assert COMMITTED.read_text() == rendered(), (
            "openapi/openapi.json is stale: run scripts/openapi and commit it"
        )

    def test_every_operation_has_a_stable_id_and_declares_its_errors(self) -> None:
        for path, operations in openapi()["paths"].items():
            for method, operation in operations.items():
                assert operation.get("operationId"), (method, path)
                if path.startswith("/executions"):
                    assert "422" in operation["responses"], (method, path)
