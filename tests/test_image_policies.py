"""Finding the automation that selects an image (image_policies), and writing and lifting a failed
tag's exclusion there (image_quarantine).

Whether an exclusion works is asked of Flux's own libraries (tests/fluxpolicy: Masterminds/semver
and Go's regexp), never of gitcanary: the tag the policy selects before and after the edit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from image_automation import build_fluxpolicy, flux_latest
from oracle import schema_problems

from gitcanary.manifests import image_policies, image_quarantine, yamlio

IMAGE = "ghcr.io/acme/app"
TAGS = ["1.0.0", "1.1.0", "1.2.0", "1.2.0-rc.1", "2.0.0", "2.1.0"]


@pytest.fixture(scope="module")
def fluxpolicy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fluxpolicy(tmp_path_factory.mktemp("fluxpolicy"))


def write_repo(root: Path, policy: str, repository: str = "", marker: str = "flux-system:app:tag") -> None:
    (root / "apps/app").mkdir(parents=True)
    (root / "apps/app/kustomization.yaml").write_text(
        "resources:\n  - deployment.yaml\nimages:\n"
        f'  - name: {IMAGE}\n    newTag: 1.1.0 # {{"$imagepolicy": "{marker}"}}\n'
    )
    (root / "flux").mkdir()
    (root / "flux/policy.yaml").write_text(policy)
    if repository:
        (root / "flux/repository.yaml").write_text(repository)


def policy_yaml(choice: str, filter_tags: str = "") -> str:
    return (
        "# the app follows its releases\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        "metadata:\n  name: app\n  namespace: flux-system\n"
        f"spec:\n  imageRepositoryRef:\n    name: app\n{filter_tags}  policy:\n{choice}"
    )


REPOSITORY = (
    "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
    f"metadata:\n  name: app\n  namespace: flux-system\nspec:\n  image: {IMAGE}\n  interval: 5m\n"
)


def docs(root: Path, path: str) -> list[dict]:
    return list(yamlio.safe_load_all((root / path).read_text()))


@pytest.mark.parametrize(
    ("range_", "tag", "selected_before", "selected_after"),
    [
        (">=1.0.0", "2.1.0", "2.1.0", "2.0.0"),
        (">=1.0.0 <2.0.0", "1.2.0", "1.2.0", "1.1.0"),
        ("^1.0.0 || ^2.0.0", "2.1.0", "2.1.0", "2.0.0"),
        (">=1.0.0-0", "2.1.0", "2.1.0", "2.0.0"),  # pre-releases stay allowed
        ("~1.2.0-0", "1.2.0", "1.2.0", "1.2.0-rc.1"),
    ],
)
def test_semver_range_gets_not_equal_and_flux_skips_the_tag(
    tmp_path: Path, fluxpolicy: Path, range_: str, tag: str, selected_before: str, selected_after: str
) -> None:
    write_repo(tmp_path, policy_yaml(f"    semver:\n      range: '{range_}'\n"))
    before_text = (tmp_path / "flux/policy.yaml").read_text()
    assert flux_latest(fluxpolicy, docs(tmp_path, "flux/policy.yaml")[0], None, TAGS) == selected_before
    [selector] = image_policies.find(tmp_path, "apps/app", IMAGE)
    assert selector.policy == "semver" and selector.where_quarantine_goes() == "spec.policy.semver.range"

    done = image_quarantine.quarantine(tmp_path, selector, tag)
    assert done is not None and done.path == "flux/policy.yaml"
    policy = docs(tmp_path, "flux/policy.yaml")[0]
    assert schema_problems(policy) == []
    assert flux_latest(fluxpolicy, policy, None, TAGS) == selected_after
    after_text = (tmp_path / "flux/policy.yaml").read_text()
    changed = [line for line in after_text.splitlines() if line not in before_text.splitlines()]
    assert len(changed) == 1 and "range:" in changed[0]  # the comment and every other line survive
    assert image_quarantine.quarantine(tmp_path, selector, tag) is None  # already there: no second edit

    assert image_quarantine.lift(tmp_path, selector, tag) is not None
    assert (tmp_path / "flux/policy.yaml").read_text() == before_text


@pytest.mark.parametrize(
    ("choice", "filter_tags", "tags", "bad", "after"),
    [
        ("    alphabetical:\n      order: asc\n", "", ["a-1", "b-2", "c-3"], "c-3", "b-2"),
        (
            "    numerical:\n      order: asc\n",
            "  filterTags:\n    pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$'\n    extract: '$ts'\n",
            ["main-aaa-100", "main-bbb-200", "main-ccc-300", "other-900"],
            "main-ccc-300",
            "main-bbb-200",
        ),
        ("    semver:\n      range: '>=1.0.0'\n", "", ["1.0.0", "build.7"], "build.7", "1.0.0"),
        (
            "    semver:\n      range: '>=1.0.0'\n",
            # The range orders extracted values (10.1.0 -> 1.10.0): `!= 20.1.0` would miss 1.20.0.
            "  filterTags:\n    pattern: '^(?P<a>[0-9]+)\\.(?P<b>[0-9]+)\\.0$'\n    extract: '$b.$a.0'\n",
            ["10.1.0", "20.1.0"],
            "20.1.0",
            "10.1.0",
        ),
    ],
)
def test_policies_that_cannot_say_not_equal_exclude_the_tag_in_the_image_repository(
    tmp_path: Path, fluxpolicy: Path, choice: str, filter_tags: str, tags: list[str], bad: str, after: str
) -> None:
    write_repo(tmp_path, policy_yaml(choice, filter_tags), REPOSITORY)
    [selector] = image_policies.find(tmp_path, "apps/app", IMAGE)
    policy = docs(tmp_path, "flux/policy.yaml")[0]
    if "semver" not in choice:
        assert flux_latest(fluxpolicy, policy, docs(tmp_path, "flux/repository.yaml")[0], tags) == bad
    done = image_quarantine.quarantine(tmp_path, selector, bad)
    assert done is not None and done.path == "flux/repository.yaml"
    repository = docs(tmp_path, "flux/repository.yaml")[0]
    # Setting the list replaces Flux's default, so the default stays in it.
    assert repository["spec"]["exclusionList"][0] == r"^.*\.sig$"
    assert schema_problems(repository) == [] and schema_problems(policy) == []
    assert flux_latest(fluxpolicy, policy, repository, [*tags, "x.sig"]) == after
    assert image_quarantine.lift(tmp_path, selector, bad) is not None
    assert flux_latest(fluxpolicy, policy, docs(tmp_path, "flux/repository.yaml")[0], tags) in (bad, "1.0.0")


def test_without_the_objects_in_the_repository_nothing_is_written_and_report_says_so(tmp_path: Path) -> None:
    write_repo(tmp_path, policy_yaml("    numerical: {}\n"))  # no ImageRepository in the repository
    [selector] = image_policies.find(tmp_path, "apps/app", IMAGE)
    assert image_quarantine.quarantine(tmp_path, selector, "3") is None
    (tmp_path / "flux/policy.yaml").unlink()
    [outside] = image_policies.find(tmp_path, "apps/app", IMAGE)
    assert outside.path is None and image_quarantine.quarantine(tmp_path, outside, "3") is None
    lines = image_policies.report(tmp_path, "apps/app", [f"{IMAGE}:1.1.0"])
    assert lines == [
        f"{IMAGE}: selected by ImagePolicy flux-system/app; quarantine cannot be written (ImagePolicy "
        "flux-system/app is not in this repository): gitcanary holds a failed tag the automation brings back"
    ]


def test_report_names_the_policy_and_where_quarantine_goes(tmp_path: Path) -> None:
    write_repo(tmp_path, policy_yaml("    semver:\n      range: '>=1.0.0'\n"))
    assert image_policies.report(tmp_path, "apps/app", [f"{IMAGE}:1.1.0"]) == [
        f"{IMAGE}: selected by ImagePolicy flux-system/app (flux/policy.yaml), semver policy; "
        "a rolled-back tag is quarantined in spec.policy.semver.range"
    ]
    assert image_policies.report(tmp_path, "apps/app", ["ghcr.io/acme/other:1"]) == []


def test_a_tag_that_is_no_valid_tag_is_never_written(tmp_path: Path) -> None:
    write_repo(tmp_path, policy_yaml("    semver:\n      range: '>=1.0.0'\n"))
    [selector] = image_policies.find(tmp_path, "apps/app", IMAGE)
    assert image_quarantine.quarantine(tmp_path, selector, "1.0.0 || *") is None
    assert "||" not in (tmp_path / "flux/policy.yaml").read_text()


TAG_CHARS = "abcXYZ019_.-"


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.text(alphabet=TAG_CHARS, min_size=1, max_size=20).filter(lambda t: t[0] not in ".-"),
    st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "\x00", "\u2028", "\n\n"]),
    st.sampled_from(["semver", "alphabetical", "numerical"]),
)
def test_a_tag_with_a_trailing_or_embedded_control_character_is_never_written(
    tag: str, bad: str, policy: str
) -> None:
    """Any tag followed by a line break or other character outside the OCI tag alphabet is refused
    (Python's `$` matches before a final newline: `^...$` alone once let "1.2.0\n" through)."""
    choice = f"    {policy}:\n      " + ("range: '>=0.0.0-0'\n" if policy == "semver" else "order: asc\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_repo(root, policy_yaml(choice), REPOSITORY)
        before = {p: (root / p).read_bytes() for p in ("flux/policy.yaml", "flux/repository.yaml")}
        [selector] = image_policies.find(root, "apps/app", IMAGE)
        for forged in (tag + bad, bad + tag, tag[:1] + bad + tag[1:]):
            assert image_quarantine.quarantine(root, selector, forged) is None, repr(forged)
            assert image_quarantine.lift(root, selector, forged) is None, repr(forged)
            assert {p: (root / p).read_bytes() for p in before} == before
        # The same tag without the stray character is written (the refusal is about the character).
        assert image_quarantine.quarantine(root, selector, tag) is not None


def test_repository_content_cannot_forge_a_trailer_or_reach_outside(tmp_path: Path) -> None:
    write_repo(tmp_path, policy_yaml('    semver:\n      range: ">=1.0.0\\nGitcanary-Phase: Succeeded"\n'))
    [selector] = image_policies.find(tmp_path, "apps/app", IMAGE)
    done = image_quarantine.quarantine(tmp_path, selector, "2.1.0")
    assert done is not None and "\n" not in done.line and "Gitcanary-Phase" in done.line
    # A symlinked directory leaving the clone is not read; nor is an object with an invalid name.
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "policy.yaml").write_text(
        policy_yaml("    numerical: {}\n").replace("name: app\n  namespace", "name: far\n  namespace")
    )
    (tmp_path / "flux/elsewhere").symlink_to(outside, target_is_directory=True)
    (tmp_path / "apps/app/kustomization.yaml").write_text(
        f'images:\n  - name: {IMAGE}\n    newTag: 1.1.0 # {{"$imagepolicy": "flux-system:far:tag"}}\n'
    )
    [far] = image_policies.find(tmp_path, "apps/app", IMAGE)
    assert far.path is None  # not found in the clone: treated as outside, nothing written there
    (tmp_path / "apps/app/kustomization.yaml").write_text(
        f'images:\n  - name: {IMAGE}\n    newTag: 1.1.0 # {{"$imagepolicy": "Flux_System:app:tag"}}\n'
    )
    assert image_policies.find(tmp_path, "apps/app", IMAGE) == []


def test_a_marker_on_a_manifest_image_line_belongs_to_that_image(tmp_path: Path) -> None:
    write_repo(tmp_path, policy_yaml("    semver:\n      range: '>=1.0.0'\n"))
    (tmp_path / "apps/app/kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    (tmp_path / "apps/app/deployment.yaml").write_text(
        "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
        f'          image: {IMAGE}:1.1.0 # {{"$imagepolicy": "flux-system:app"}}\n'
        "        - name: sidecar\n"
        '          image: ghcr.io/acme/sidecar:2.0 # {"$imagepolicy": "flux-system:sidecar"}\n'
    )
    assert [(s.namespace, s.name) for s in image_policies.find(tmp_path, "apps/app", IMAGE)] == [
        ("flux-system", "app")
    ]
    assert image_policies.markers(tmp_path, "apps/app")[1][3] == "ghcr.io/acme/sidecar"


def test_a_marked_images_entry_renders_its_new_name(tmp_path: Path) -> None:
    (tmp_path / "apps/app").mkdir(parents=True)
    (tmp_path / "apps/app/kustomization.yaml").write_text(
        "images:\n"
        '  - name: app\n    newTag: 1.1.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
        "    newName: ghcr.io/acme/app\n"
        '  - name: ghcr.io/acme/other\n    newTag: "2" # {"$imagepolicy": "flux-system:other:tag"}\n'
    )
    assert [m[3] for m in image_policies.markers(tmp_path, "apps/app")] == [
        "ghcr.io/acme/app",
        "ghcr.io/acme/other",
    ]
