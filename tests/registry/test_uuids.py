import uuid

from registry._uuids import urn_uuid


def test_urn_uuid_is_a_canonical_random_version_4_uuid() -> None:
    seen = set()
    for _ in range(2000):
        urn = urn_uuid()
        assert urn.startswith("urn:uuid:")
        parsed = uuid.UUID(urn[len("urn:uuid:"):])
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == urn[len("urn:uuid:"):]      # canonical: lowercase, 8-4-4-4-12
        seen.add(urn)
    assert len(seen) == 2000
    # every random bit is used: each of the 122 free bits is seen both 0 and 1
    ints = [uuid.UUID(u[len("urn:uuid:"):]).int for u in seen]
    fixed = (0xF << 76) | (0x3 << 62)
    for bit in range(128):
        if not (fixed >> bit) & 1:
            assert {(i >> bit) & 1 for i in ints} == {0, 1}, bit
