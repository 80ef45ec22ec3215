"""Small Sphinx fixes for the built book, so that a reader's browser shows no JavaScript errors.

- sphinx-thebe (and sphinx-togglebutton) register their inline scripts a second time, with
  a file name of ``''`` instead of ``None``; the repeated ``const THEBE_JS_URL`` is a
  JavaScript error on every page. Keep the first copy of each identical script.
- The theme's Colab launch button links the page's ``.md`` source, which Colab cannot open:
  point it at the generated notebook ``notebooks/<chapter>.ipynb`` instead.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def _colab_to_generated_notebook(app, pagename, templatename, context, doctree):
    """Point the theme's Colab launch button at ``notebooks/<chapter>.ipynb`` (Colab can't open ``.md``).

    Pages that are not chapters (introduction, appendices) have no generated notebook: their
    Colab button is removed.
    """
    import re

    from islteach.notebooks import CHAPTERS

    pattern = re.compile(r"(colab\.research\.google\.com/github/.+?/blob/[^/]+/)book/([^/]+)\.md$")

    def fix(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                fix(v)
        elif isinstance(obj, list):
            keep = []
            for item in obj:
                url = item.get("url") if isinstance(item, dict) else None
                m = pattern.search(url) if isinstance(url, str) else None
                if m and m.group(2) not in CHAPTERS:
                    continue
                if m:
                    item["url"] = pattern.sub(r"\1notebooks/\2.ipynb", url)
                fix(item)
                keep.append(item)
            obj[:] = keep

    fix(context.get("header_buttons"))


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _colab_to_generated_notebook, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

