import pytest
from tests.benchmark.conftest import release_root
pytestmark = pytest.mark.django_db
def test_try(release, settings):
    root = release_root(settings, release)
    import subprocess
    print(subprocess.run(["find", str(root), "-maxdepth", "3"], capture_output=True, text=True).stdout[:3000])
    print(release.facts["splits"], release.facts["timings"])
    print((root/"README.md").read_text()[:3000])
