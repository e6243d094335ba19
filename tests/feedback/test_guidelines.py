"""Guidelines Markdown becomes safe HTML: no raw HTML, no script links, no outside images."""

from __future__ import annotations

from llmops.feedback.guidelines import render_guidelines


def test_markdown_is_rendered_and_html_is_escaped():
    html = render_guidelines("# Rate *helpfulness*\n\n- **Correct** first\n- then `style`\n\n"
                             "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>")
    assert "<h1>Rate <em>helpfulness</em></h1>" in html
    assert "<li><strong>Correct</strong> first</li>" in html and "<code>style</code>" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_links_are_safe_and_images_are_not_fetched():
    html = render_guidelines("[ok](https://example.org/guide) [bad](javascript:alert(1)) ![pix](http://evil.test/p.png)")
    assert '<a href="https://example.org/guide" target="_blank" rel="noopener noreferrer nofollow">ok</a>' in html
    assert 'href="javascript' not in html and "<img" not in html
    assert render_guidelines("") == ""


def test_the_api_serves_a_projects_guidelines_as_safe_html(client, keys):
    project = {"name": "g", "guidelines": "**Be kind.** <b onclick=x>raw</b>", "questions": [{"type": "rating", "name": "q"}]}
    assert client.post("/v1/projects", json=project, headers=keys.headers("admin")).status_code == 201
    got = client.get("/v1/projects/g/guidelines", headers=keys.headers("rater"))
    assert got.status_code == 200
    assert got.json() == {"project": "g", "markdown": project["guidelines"],
                          "html": "<p><strong>Be kind.</strong> &lt;b onclick=x&gt;raw&lt;/b&gt;</p>\n"}
    assert client.get("/v1/projects/nope/guidelines", headers=keys.headers("rater")).status_code == 404
    assert client.get("/v1/projects/g/guidelines").status_code == 401
