# The demo network's business data, run on the master by `ledgermesh demo` (npm start) once
# the slave and the workers have declared themselves: sub-accounts and profiles of several
# kinds. The master's allocator assigns them; the workers run scripts/demo-runner.mjs for each.

<acme = {"subaccount": {"name": "acme", "account": "acme-inc"}}>
blockchain prepare policy !acme
blockchain insert where policy = !acme

<globex = {"subaccount": {"name": "globex", "account": "globex-corp"}}>
blockchain prepare policy !globex
blockchain insert where policy = !globex

<p = {"profile": {"name": "acme-linkedin-1", "kind": "linkedin", "subaccount": "acme", "settings": {"daily_invites": 20}}}>
blockchain prepare policy !p
blockchain insert where policy = !p

<p = {"profile": {"name": "acme-linkedin-2", "kind": "linkedin", "subaccount": "acme", "settings": {"daily_invites": 10}}}>
blockchain prepare policy !p
blockchain insert where policy = !p

<p = {"profile": {"name": "acme-verify", "kind": "email-verification", "subaccount": "acme", "settings": {"batch": 100}}}>
blockchain prepare policy !p
blockchain insert where policy = !p

<p = {"profile": {"name": "globex-facebook", "kind": "facebook", "subaccount": "globex", "settings": {"pages": ["globex"]}}}>
blockchain prepare policy !p
blockchain insert where policy = !p

<p = {"profile": {"name": "globex-mta", "kind": "mta", "subaccount": "globex", "settings": {"domain": "mail.globex.example"}}}>
blockchain prepare policy !p
blockchain insert where policy = !p
