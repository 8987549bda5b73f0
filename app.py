"""bnviz — the entry point: page setup and the page list (the lab, then the lessons).

Every page of the app runs through here (`st.navigation`), so what all pages share — the
config kept alive across page switches, the URL — is set up once, in `dashboard.nav`.
"""

import streamlit as st

from dashboard import lesson_view, nav, present, state, theme

st.set_page_config(page_title="bnviz", page_icon="📊", layout="wide")
# Streamlit leaves ~6rem above the first element and 5rem on each side: on a 1024×768
# projector that is a chart's title and a fifth of the width. No setting controls it.
st.html(
    "<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem;"
    "padding-left:2rem;padding-right:2rem}</style>"
)
page = nav.navigation(lesson_view.render)
# Every page: the link's settings (present=1 among them) before any CSS, and the lab's
# config kept alive while another page shows (pages that show the link's problems ask again).
state.ensure_config_state()
present.apply()
if present.is_on() and page.url_path in ("runs", "layers", "tour"):
    present.toggle(st, "present-top")  # the header is hidden: the way back is here
theme.keep(nav.url_paths(), page.url_path)
page.run()
