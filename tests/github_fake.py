"""A small GitHub REST API on 127.0.0.1 for the GitHub code host's tests (a double of an internet
service, so it follows the documented request and response shapes).

One repository, held in memory as real git objects: blob, tree and commit ids are git's own sha-1s,
so a commit made twice from the same inputs has the same id, as on GitHub. It answers what PyGitHub
calls for autofix: git/refs, git/blobs, git/trees, git/commits, pulls (create, list, get,
requested_reviewers), issues labels and comments, commits/{ref}/check-runs, commits/{ref}/status,
and the App installation-token exchange. Tests drive the other side: seed the default branch, merge
(squash, rebase, merge) or close a pull request, post check runs and statuses, and script failures
(a 403 rate limit with its headers, a 502) for the next matching requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

DOCS = "https://docs.github.com/rest"
Json = Any


def git_hash(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Scripted:
    method: str
    path: re.Pattern[str]
    status: int
    body: Json
    headers: Callable[[], dict[str, str]]
    times: int


class Reply(Exception):
    def __init__(self, status: int, body: Json, headers: Mapping[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, dict(headers or {})


def refuse(status: int, message: str, errors: list[Json] | None = None) -> Reply:
    body: dict[str, Json] = {"message": message, "documentation_url": DOCS}
    if errors is not None:
        body["errors"] = errors
    return Reply(status, body)


@dataclass
class FakeGitHub:
    owner: str = "acme"
    name: str = "shop"
    token: str = "ghp_test_token"
    prefix: str = "/api/v3"  # GitHub Enterprise's API root
    collaborators: set[str] = field(default_factory=lambda: {"alice", "bob"})
    app: tuple[int, str, int] | None = None  # (app id, public key PEM, installation id)

    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # sha -> (mode, name, sha)
    commits: dict[str, dict[str, Json]] = field(default_factory=dict)
    commit_bodies: dict[str, bytes] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> sha
    pulls: dict[int, dict[str, Json]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Json]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Json]]] = field(default_factory=dict)
    requests: list[tuple[str, str, Json, int]] = field(default_factory=list)  # method, path, body, status
    scripted: list[Scripted] = field(default_factory=list)
    issued_tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    @property
    def repo_url(self) -> str:
        return f"{self.base_url}/repos/{self.owner}/{self.name}"

    # --- what tests do on the other side -------------------------------------------------------------

    def seed(self, files: Mapping[str, bytes | str], branch: str = "main", message: str = "initial") -> str:
        """A commit on `branch` holding exactly `files` (path -> content)."""
        with self._lock:
            flat = {path: ("100644", self._blob(data.encode() if isinstance(data, str) else data))
                    for path, data in files.items()}
            parent = self.refs.get(f"refs/heads/{branch}")
            sha = self._commit(self._tree_from_flat(flat), [parent] if parent else [], message,
                               {"name": "seed", "email": "seed@example.com", "date": iso(datetime.now(UTC))})
            self.refs[f"refs/heads/{branch}"] = sha
            return sha

    def seed_from_checkout(self, checkout: Path, branch: str = "main") -> str:
        """The tracked files of a local git checkout, as the default branch."""
        names = subprocess.run(["git", "ls-files", "-z"], cwd=checkout, capture_output=True, check=True).stdout
        return self.seed({n: (checkout / n).read_bytes() for n in names.decode().split("\0") if n}, branch)

    def seed_as_clone(self, checkout: Path, branch: str = "main") -> str:
        """Seed from a local checkout, then make that checkout a clone of this GitHub: its HEAD
        becomes the seeded commit (same tree), so a commit verified locally is one GitHub has."""
        sha = self.seed_from_checkout(checkout, branch)
        self.export_to(checkout)
        subprocess.run(["git", "reset", "-q", "--hard", sha], cwd=checkout, check=True)
        return sha

    def export_to(self, checkout: Path) -> None:
        """Write every object into a local repo, as `git fetch` from this GitHub would; checks that
        git computes the same ids."""
        objects = [("blob", sha, data) for sha, data in self.blobs.items()]
        objects += [("tree", sha, self._tree_body(entries)) for sha, entries in self.trees.items()]
        objects += [("commit", sha, body) for sha, body in self.commit_bodies.items()]
        for kind, sha, body in objects:
            written = subprocess.run(["git", "hash-object", "-w", "-t", kind, "--stdin"], cwd=checkout,
                                     input=body, capture_output=True, check=True).stdout.decode().strip()
            assert written == sha, f"git hashes this {kind} as {written}, the fake as {sha}"

    def pull(self, number: int) -> Json:
        """The pull request as the API shows it."""
        with self._lock:
            return self._pull_json(number)

    def file_at(self, commit_sha: str, path: str) -> bytes | None:
        entry = self._flatten(self.commits[commit_sha]["tree"]).get(path)
        return self.blobs[entry[1]] if entry else None

    def paths_at(self, commit_sha: str) -> set[str]:
        return set(self._flatten(self.commits[commit_sha]["tree"]))

    def merge(self, number: int, method: str = "squash") -> str:
        """Merge a pull request as GitHub's merge button does; returns merge_commit_sha."""
        with self._lock:
            pull = self.pulls[number]
            base_ref, head_sha = f"refs/heads/{pull['base']['ref']}", pull["head"]["sha"]
            main, tree = self.refs[base_ref], self.commits[head_sha]["tree"]
            who = {"name": "maintainer", "email": "m@example.com", "date": iso(datetime.now(UTC))}
            if method == "merge":
                sha = self._commit(tree, [main, head_sha], f"Merge pull request #{number}", who)
            else:  # squash, and a one-commit rebase: a new commit on main, not the branch's commit
                sha = self._commit(tree, [main], f"{pull['title']} (#{number})", who)
            self.refs[base_ref] = sha
            pull.update(state="closed", merged=True, merged_at=iso(datetime.now(UTC)), merge_commit_sha=sha,
                        closed_at=iso(datetime.now(UTC)))
            return sha

    def close(self, number: int) -> None:
        with self._lock:
            self.pulls[number].update(state="closed", closed_at=iso(datetime.now(UTC)))

    def add_check_run(self, sha: str, name: str, conclusion: str | None, *, title: str = "", summary: str = "",
                      text: str = "", status: str = "completed") -> None:
        with self._lock:
            runs = self.check_runs.setdefault(sha, [])
            number = sum(len(v) for v in self.check_runs.values()) + 1
            runs.append({
                "id": number, "head_sha": sha, "node_id": f"CR_{number}", "external_id": str(number),
                "url": f"{self.repo_url}/check-runs/{number}",
                "html_url": f"https://github.example/{self.owner}/{self.name}/runs/{number}",
                "details_url": f"https://ci.example/runs/{number}", "status": status, "conclusion": conclusion,
                "started_at": iso(datetime.now(UTC)), "completed_at": iso(datetime.now(UTC)) if conclusion else None,
                "output": {"title": title or None, "summary": summary or None, "text": text or None,
                           "annotations_count": 0, "annotations_url": f"{self.repo_url}/check-runs/{number}/annotations"},
                "name": name, "check_suite": {"id": number}, "app": None, "pull_requests": [],
            })

    def add_status(self, sha: str, context: str, state: str, description: str, target_url: str) -> None:
        with self._lock:
            statuses = self.statuses.setdefault(sha, [])
            statuses.append({"url": f"{self.repo_url}/statuses/{sha}", "id": len(statuses) + 1,
                             "node_id": f"ST_{len(statuses) + 1}", "state": state, "description": description,
                             "target_url": target_url, "context": context, "avatar_url": None,
                             "created_at": iso(datetime.now(UTC)), "updated_at": iso(datetime.now(UTC))})

    def fail_next(self, method: str, path: str, status: int, body: Json,
                  headers: Callable[[], dict[str, str]] = dict, times: int = 1) -> None:
        """Answer the next `times` requests matching (method, path regex under the repo) like this."""
        self.scripted.append(Scripted(method, re.compile(path), status, body, headers, times))

    def rate_limited(self, method: str, path: str, reset_in_s: float, times: int = 1) -> None:
        """A primary rate limit: 403, x-ratelimit-remaining 0, reset `reset_in_s` from each answer."""
        def headers() -> dict[str, str]:
            return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                    "x-ratelimit-resource": "core", "x-ratelimit-reset": str(int(time.time() + reset_in_s))}
        self.fail_next(method, path, 403, {"message": "API rate limit exceeded for user ID 1.",
                                           "documentation_url": DOCS}, headers, times)

    def calls(self, method: str, pattern: str, status: int | None = None) -> list[Json]:
        """Bodies of the requests made with `method` to paths matching `pattern` (answered `status`)."""
        return [body for m, path, body, answered in self.requests
                if m == method and re.search(pattern, path) and status in (None, answered)]

    # --- git objects --------------------------------------------------------------------------------

    def _blob(self, data: bytes) -> str:
        sha = git_hash("blob", data)
        self.blobs[sha] = data
        return sha

    @staticmethod
    def _tree_body(ordered: list[tuple[str, str, str]]) -> bytes:
        return b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, name, sha in ordered)

    def _tree(self, entries: list[tuple[str, str, str]]) -> str:
        ordered = sorted(entries, key=lambda e: e[1] + ("/" if e[0] == "40000" else ""))
        sha = git_hash("tree", self._tree_body(ordered))
        self.trees[sha] = ordered
        return sha

    def _tree_from_flat(self, flat: Mapping[str, tuple[str, str]]) -> str:
        children: dict[str, dict[str, tuple[str, str]]] = {}
        entries: list[tuple[str, str, str]] = []
        for path, (mode, sha) in flat.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = (mode, sha)
            else:
                entries.append((mode, head, sha))
        entries += [("40000", name, self._tree_from_flat(sub)) for name, sub in children.items()]
        return self._tree(entries)

    def _flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        flat: dict[str, tuple[str, str]] = {}
        for mode, name, sha in self.trees[tree_sha]:
            if mode == "40000":
                flat.update(self._flatten(sha, f"{prefix}{name}/"))
            else:
                flat[f"{prefix}{name}"] = (mode, sha)
        return flat

    def _commit(self, tree: str, parents: list[str], message: str, author: Json,
                committer: Json | None = None) -> str:
        committer = committer or author

        def signature(who: Json) -> str:
            stamp = int(datetime.fromisoformat(who["date"].replace("Z", "+00:00")).timestamp())
            return f"{who['name']} <{who['email']}> {stamp} +0000"

        body = (f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
                + f"author {signature(author)}\ncommitter {signature(committer)}\n\n{message}")
        sha = git_hash("commit", body.encode())
        self.commit_bodies[sha] = body.encode()
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message, "author": author,
                             "committer": committer}
        return sha

    def _is_ancestor(self, older: str, newer: str) -> bool:
        seen, todo = set(), [newer]
        while todo:
            sha = todo.pop()
            if sha == older:
                return True
            if sha not in seen:
                seen.add(sha)
                todo += self.commits[sha]["parents"]
        return False

    # --- JSON shapes ---------------------------------------------------------------------------------

    def _commit_json(self, sha: str) -> Json:
        c = self.commits[sha]
        return {"sha": sha, "node_id": f"C_{sha[:8]}", "url": f"{self.repo_url}/git/commits/{sha}",
                "html_url": f"https://github.example/{self.owner}/{self.name}/commit/{sha}",
                "author": c["author"], "committer": c["committer"], "message": c["message"],
                "tree": {"sha": c["tree"], "url": f"{self.repo_url}/git/trees/{c['tree']}"},
                "parents": [{"sha": p, "url": f"{self.repo_url}/git/commits/{p}",
                             "html_url": f"https://github.example/{self.owner}/{self.name}/commit/{p}"}
                            for p in c["parents"]],
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None}}

    def _tree_json(self, sha: str, recursive: bool) -> Json:
        if recursive:
            items = [(path, mode, "blob", blob) for path, (mode, blob) in sorted(self._flatten(sha).items())]
        else:
            items = [(name, mode, "tree" if mode == "40000" else "blob", s) for mode, name, s in self.trees[sha]]
        entries = [{"path": path, "mode": mode, "type": kind, "sha": s,
                    **({"size": len(self.blobs[s])} if kind == "blob" else {}),
                    "url": f"{self.repo_url}/git/{kind}s/{s}"} for path, mode, kind, s in items]
        return {"sha": sha, "url": f"{self.repo_url}/git/trees/{sha}", "tree": entries, "truncated": False}

    def _ref_json(self, ref: str) -> Json:
        sha = self.refs[ref]
        return {"ref": ref, "node_id": f"REF_{ref}", "url": f"{self.repo_url}/git/{ref}",
                "object": {"type": "commit", "sha": sha, "url": f"{self.repo_url}/git/commits/{sha}"}}

    def _user(self, login: str) -> Json:
        return {"login": login, "id": abs(hash(login)) % 10_000, "node_id": f"U_{login}", "type": "User",
                "url": f"{self.base_url}/users/{login}", "html_url": f"https://github.example/{login}",
                "site_admin": False}

    def _repo_json(self) -> Json:
        return {"id": 1, "node_id": "R_1", "name": self.name, "full_name": f"{self.owner}/{self.name}",
                "owner": self._user(self.owner), "private": True, "url": self.repo_url,
                "html_url": f"https://github.example/{self.owner}/{self.name}", "default_branch": "main"}

    def _pull_json(self, number: int) -> Json:
        p = self.pulls[number]
        head_ref = f"refs/heads/{p['head']['ref']}"
        if p["state"] == "open" and head_ref in self.refs:
            p["head"]["sha"] = self.refs[head_ref]  # an open pull request follows its branch
        issue = f"{self.repo_url}/issues/{number}"
        return {**p, "url": f"{self.repo_url}/pulls/{number}", "id": number, "node_id": f"PR_{number}",
                "html_url": f"https://github.example/{self.owner}/{self.name}/pull/{number}",
                "issue_url": issue, "comments_url": f"{issue}/comments",
                "commits_url": f"{self.repo_url}/pulls/{number}/commits",
                "statuses_url": f"{self.repo_url}/statuses/{p['head']['sha']}",
                "head": {**p["head"], "label": f"{self.owner}:{p['head']['ref']}", "user": self._user(self.owner),
                         "repo": self._repo_json()},
                "base": {**p["base"], "label": f"{self.owner}:{p['base']['ref']}", "user": self._user(self.owner),
                         "repo": self._repo_json()},
                "requested_reviewers": [self._user(u) for u in p["requested_reviewers"]],
                "requested_teams": [{"slug": t, "name": t, "id": i} for i, t in enumerate(p["requested_teams"])],
                "labels": [self._label(name) for name in p["labels"]], "user": self._user("autofix-bot")}

    def _label(self, name: str) -> Json:
        return {"id": abs(hash(name)) % 10_000, "node_id": f"L_{name}", "url": f"{self.repo_url}/labels/{name}",
                "name": name, "color": "ededed", "default": False, "description": None}

    # --- HTTP ------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        path, query = unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        with self._lock:
            try:
                status, payload, headers = 200, self._route(method, path, query, body,
                                                            handler.headers.get("Authorization", "")), {}
            except Reply as reply:
                status, payload, headers = reply.status, reply.body, reply.headers
            if isinstance(payload, tuple):
                status, payload = payload
            self.requests.append((method, path, body, status))
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
                            "x-ratelimit-reset": str(int(time.time()) + 3600), **headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def _route(self, method: str, path: str, query: dict[str, str], body: Json, auth: str) -> Json:
        if not path.startswith(self.prefix):
            raise refuse(404, "Not Found")
        path = path[len(self.prefix):]
        if method == "POST" and (m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)):
            return self._installation_token(int(m[1]), auth)
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or credential not in {self.token, *self.issued_tokens}:
            raise refuse(401, "Bad credentials")
        for script in self.scripted:
            if script.times > 0 and script.method == method and script.path.search(path):
                script.times -= 1
                raise Reply(script.status, script.body, script.headers())
        repo = f"/repos/{self.owner}/{self.name}"
        if not path.startswith(repo):
            raise refuse(404, "Not Found")
        rest = path[len(repo):]
        for verb, pattern, action in self._routes():
            if verb == method and (m := re.fullmatch(pattern, rest)):
                return action(*m.groups(), query=query, body=body)
        raise refuse(404, "Not Found")

    def _routes(self) -> list[tuple[str, str, Callable[..., Json]]]:
        return [
            ("GET", r"", lambda **_: self._repo_json()),
            ("GET", r"/git/ref/(.+)", self._get_ref),
            ("POST", r"/git/refs", self._create_ref),
            ("PATCH", r"/git/refs/(.+)", self._update_ref),
            ("GET", r"/git/commits/(\w+)", lambda sha, **_: self._known(self.commits, sha, self._commit_json)),
            ("POST", r"/git/commits", self._create_commit),
            ("GET", r"/git/trees/(\w+)", lambda sha, query, **_: self._known(
                self.trees, sha, lambda s: self._tree_json(s, query.get("recursive") == "1"))),
            ("POST", r"/git/trees", self._create_tree),
            ("GET", r"/git/blobs/(\w+)", lambda sha, **_: self._known(self.blobs, sha, self._blob_json)),
            ("POST", r"/git/blobs", self._create_blob),
            ("GET", r"/pulls", self._list_pulls),
            ("POST", r"/pulls", self._create_pull),
            ("GET", r"/pulls/(\d+)", lambda n, **_: self._known(self.pulls, int(n), self._pull_json)),
            ("POST", r"/pulls/(\d+)/requested_reviewers", self._request_reviews),
            ("POST", r"/issues/(\d+)/labels", self._add_labels),
            ("POST", r"/issues/(\d+)/comments", self._comment),
            ("GET", r"/commits/(\w+)/check-runs", self._list_check_runs),
            ("GET", r"/commits/(\w+)/status", self._combined_status),
        ]

    @staticmethod
    def _known(table: Mapping[Any, Any], key: Any, render: Callable[[Any], Json]) -> Json:
        if key not in table:
            raise refuse(404, "Not Found")
        return render(key)

    def _installation_token(self, installation: int, auth: str) -> Json:
        if self.app is None or installation != self.app[2] or not auth.startswith("Bearer "):
            raise refuse(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(auth[len("Bearer "):], self.app[1], algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            raise refuse(401, f"A JSON web token could not be decoded: {exc}") from exc
        if str(claims.get("iss")) != str(self.app[0]):
            raise refuse(401, "'Issuer' claim ('iss') must be an Integer")
        token = f"ghs_{len(self.issued_tokens) + 1:036d}"
        self.issued_tokens.add(token)
        expires = iso(datetime.now(UTC) + timedelta(hours=1))
        return 201, {"token": token, "expires_at": expires, "permissions": {"contents": "write",
                     "pull_requests": "write", "checks": "read"}, "repository_selection": "selected"}

    def _get_ref(self, ref: str, **_: Any) -> Json:
        full = f"refs/{ref}"
        if full not in self.refs:
            raise refuse(404, "Not Found")
        return self._ref_json(full)

    def _create_ref(self, body: Json, **_: Any) -> Json:
        ref, sha = body.get("ref", ""), body.get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise refuse(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if ref in self.refs:
            raise refuse(422, "Reference already exists")
        if sha not in self.commits:
            raise refuse(422, "Object does not exist")
        self.refs[ref] = sha
        return 201, self._ref_json(ref)

    def _update_ref(self, ref: str, body: Json, **_: Any) -> Json:
        full, sha = f"refs/{ref}", body.get("sha", "")
        if full not in self.refs:
            raise refuse(422, "Reference does not exist")
        if sha not in self.commits:
            raise refuse(422, "Object does not exist")
        if not body.get("force") and not self._is_ancestor(self.refs[full], sha):
            raise refuse(422, "Update is not a fast forward")
        self.refs[full] = sha
        return self._ref_json(full)

    def _create_commit(self, body: Json, **_: Any) -> Json:
        tree, parents = body.get("tree"), body.get("parents", [])
        if tree not in self.trees:
            raise refuse(422, "Tree SHA does not exist")
        if any(p not in self.commits for p in parents):
            raise refuse(422, "Parent SHA does not exist or is not a commit object")
        now = {"name": "autofix-bot", "email": "bot@example.com", "date": iso(datetime.now(UTC))}
        author = {**now, **(body.get("author") or {})}
        sha = self._commit(tree, parents, body["message"], author, {**author, **(body.get("committer") or {})})
        return 201, self._commit_json(sha)

    def _create_tree(self, body: Json, **_: Any) -> Json:
        base = body.get("base_tree")
        if base is not None and base not in self.trees:
            raise refuse(422, "base_tree is not a valid tree oid")
        flat = self._flatten(base) if base else {}
        for entry in body.get("tree", []):
            if entry.get("type") != "blob":
                raise refuse(422, "Invalid tree info: only blobs are supported here")
            if "content" in entry:
                flat[entry["path"]] = (entry["mode"], self._blob(entry["content"].encode()))
            elif entry.get("sha") is None:
                flat.pop(entry["path"], None)
            elif entry["sha"] not in self.blobs:
                raise refuse(422, f"tree.sha {entry['sha']} is not a valid blob")
            else:
                flat[entry["path"]] = (entry["mode"], entry["sha"])
        return 201, self._tree_json(self._tree_from_flat(flat), recursive=False)

    def _blob_json(self, sha: str) -> Json:
        encoded = base64.encodebytes(self.blobs[sha]).decode()  # GitHub wraps the base64 in lines
        return {"sha": sha, "node_id": f"B_{sha[:8]}", "size": len(self.blobs[sha]),
                "url": f"{self.repo_url}/git/blobs/{sha}", "content": encoded, "encoding": "base64"}

    def _create_blob(self, body: Json, **_: Any) -> Json:
        content, encoding = body.get("content", ""), body.get("encoding", "utf-8")
        data = base64.b64decode(content) if encoding == "base64" else content.encode()
        sha = self._blob(data)
        return 201, {"url": f"{self.repo_url}/git/blobs/{sha}", "sha": sha}

    def _list_pulls(self, query: dict[str, str], **_: Any) -> Json:
        state = query.get("state", "open")
        found = [n for n, p in sorted(self.pulls.items())
                 if (state == "all" or p["state"] == state)
                 and ("head" not in query or query["head"] == f"{self.owner}:{p['head']['ref']}")
                 and ("base" not in query or query["base"] == p["base"]["ref"])]
        return [self._pull_json(n) for n in found]

    def _create_pull(self, body: Json, **_: Any) -> Json:
        head, base = body.get("head", ""), body.get("base", "")
        branch = head.split(":", 1)[-1]
        if f"refs/heads/{branch}" not in self.refs:
            raise refuse(422, "Validation Failed", [{"resource": "PullRequest", "field": "head", "code": "invalid"}])
        if f"refs/heads/{base}" not in self.refs:
            raise refuse(422, "Validation Failed", [{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        if any(p["state"] == "open" and p["head"]["ref"] == branch for p in self.pulls.values()):
            raise refuse(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                     "message": f"A pull request already exists for {self.owner}:{branch}."}])
        number = len(self.pulls) + 1
        now = iso(datetime.now(UTC))
        self.pulls[number] = {
            "number": number, "state": "open", "locked": False, "title": body.get("title", ""),
            "body": body.get("body"), "draft": bool(body.get("draft", False)), "created_at": now, "updated_at": now,
            "closed_at": None, "merged_at": None, "merge_commit_sha": None, "merged": False, "mergeable": True,
            "head": {"ref": branch, "sha": self.refs[f"refs/heads/{branch}"]},
            "base": {"ref": base, "sha": self.refs[f"refs/heads/{base}"]},
            "requested_reviewers": [], "requested_teams": [], "labels": [],
        }
        return 201, self._pull_json(number)

    def _request_reviews(self, number: str, body: Json, **_: Any) -> Json:
        pull = self._known(self.pulls, int(number), lambda n: self.pulls[n])
        reviewers = body.get("reviewers", [])
        if any(r not in self.collaborators for r in reviewers):
            raise refuse(422, "Reviews may only be requested from collaborators. One or more of the users or "
                              f"teams you specified is not a collaborator of the {self.owner}/{self.name} repository.")
        pull["requested_reviewers"] = sorted({*pull["requested_reviewers"], *reviewers})
        pull["requested_teams"] = sorted({*pull["requested_teams"], *body.get("team_reviewers", [])})
        return 201, self._pull_json(int(number))

    def _add_labels(self, number: str, body: Json, **_: Any) -> Json:
        pull = self._known(self.pulls, int(number), lambda n: self.pulls[n])
        # Documented bodies: {"labels": [...]}, a bare array of names (PyGitHub's), or one name.
        names = body if isinstance(body, list) else [body] if isinstance(body, str) else body.get("labels", [])
        for name in names:
            if name not in pull["labels"]:
                pull["labels"].append(name)
        return [self._label(name) for name in pull["labels"]]

    def _comment(self, number: str, body: Json, **_: Any) -> Json:
        self._known(self.pulls, int(number), lambda n: n)
        comments = self.comments.setdefault(int(number), [])
        comments.append(body["body"])
        issue = f"{self.repo_url}/issues/{number}"
        return 201, {"id": len(comments), "node_id": f"IC_{len(comments)}", "url": f"{issue}/comments/{len(comments)}",
                     "html_url": f"https://github.example/{self.owner}/{self.name}/pull/{number}#issuecomment",
                     "body": body["body"], "user": self._user("autofix-bot"), "issue_url": issue,
                     "created_at": iso(datetime.now(UTC)), "updated_at": iso(datetime.now(UTC))}

    def _list_check_runs(self, sha: str, **_: Any) -> Json:
        runs = self.check_runs.get(sha, [])
        return {"total_count": len(runs), "check_runs": runs}

    def _combined_status(self, sha: str, **_: Any) -> Json:
        latest = {s["context"]: s for s in self.statuses.get(sha, [])}  # the newest per context counts
        states = {s["state"] for s in latest.values()}
        state = ("failure" if states & {"failure", "error"} else "pending" if not states or "pending" in states
                 else "success")
        return {"state": state, "statuses": list(latest.values()), "sha": sha, "total_count": len(latest),
                "repository": self._repo_json(), "commit_url": f"{self.repo_url}/commits/{sha}",
                "url": f"{self.repo_url}/commits/{sha}/status"}
