"""The Design tab's graph view: the design as a clickable node-link graph, its analyzer warnings.

Drawn in the browser by Cytoscape.js with the dagre layout (``explorer/ui/static/``: the minified
files and their licences ship inside the package; nothing is fetched from the internet). Gradio
serves that folder as static files (``STATIC_DIR``, registered by ``register_static``) and a
``gr.HTML`` component loads them through its ``head`` and draws its value (``graph_value``: the
``explorer.graph`` data as JSON) in ``GRAPH_JS``:

- one dagre run lays out every stage top to bottom (the edges between stages and the residual
  skips are left out of the layout), then the stages stand side by side as columns, each in a box
  labelled with its resolution (a long chain reads as a few short columns, not one long line);
- clicking a node sends ``select`` with the node's block key (``evt._data["key"]``) and shows the
  block's inside (its main operations, the tensor shape on every edge) in the panel beside;
- the selected block's nodes are highlighted; a value whose nodes and edges are those already
  drawn (``layout_key``) keeps the layout: its labels, colours and shapes are rewritten in place;
- the time the browser took to lay out and draw is left on the canvas element
  (``data-render-ms``) for ``benchmarks/ui_latency.py``.

``warnings_html`` lists ``explorer.design_warnings`` for the analyzer panel beside the graph (under it on
a narrow window): one item per warning, the place first, then the problem and its fix.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..analysis import Analysis
from ..design_warnings import DesignWarning, design_warnings
from ..graph import design_graph
from ..spec import ArchitectureSpec

__all__ = ["GRAPH_CSS", "GRAPH_JS", "GRAPH_PAGE_CSS", "GRAPH_TEMPLATE", "SCRIPTS", "STATIC_DIR", "graph_head",
           "graph_outputs", "graph_value", "register_static", "warnings_html"]

#: the shipped JavaScript (Cytoscape.js, cytoscape-dagre with dagre bundled) and their licences
STATIC_DIR = Path(__file__).resolve().parent / "static"
SCRIPTS = ("cytoscape.min.js", "cytoscape-dagre.min.js")


def register_static() -> None:
    """Let Gradio serve ``STATIC_DIR`` (call before the app is built)."""
    gr.set_static_paths([str(STATIC_DIR)])


def graph_head() -> str:
    """``<script>`` tags loading the shipped files from this server (Gradio's file route)."""
    return "".join(f'<script src="/gradio_api/file={STATIC_DIR / name}"></script>' for name in SCRIPTS)


def graph_value(spec: ArchitectureSpec, analysis: Analysis, selected: str | None) -> str:
    """The graph component's value: ``explorer.graph.design_graph(...).to_dict()`` as JSON text.

    Text, not a mapping: the page parses it once (a mapping would reach the script as a deeply
    reactive proxy, slow to walk). ``layout_key`` names what the layout depends on: the nodes (id,
    kind, stage), the edges and the stages, not the labels, colours or shapes (every node has a fixed
    size). A value whose key is already drawn keeps the layout: the page only rewrites the labels
    and moves the highlight (a wider or narrower stage, a kernel or a new selection: no new layout).
    """
    data = design_graph(spec, analysis, selected).to_dict()
    structure = [[(n["id"], n["kind"], n["group"]) for n in data["nodes"]],
                 [(e["source"], e["target"], e["kind"]) for e in data["edges"]], [g["id"] for g in data["groups"]]]
    data["layout_key"] = hashlib.sha1(json.dumps(structure).encode()).hexdigest()[:16]
    return json.dumps(data, separators=(",", ":"))


def warnings_html(warnings: Sequence[DesignWarning]) -> str:
    """The analyzer panel: one line per warning (place, problem, fix), or a line saying there is none."""
    if not warnings:
        return '<div class="gv-warnings ok">✓ Analyzer: no warnings.</div>'
    items = "".join(
        f'<li data-kind="{w.kind}" data-key="{html.escape(w.key or "")}"><b class="place">{html.escape(w.place)}</b>'
        f'{html.escape(w.message)}. <span class="fix">Fix: {html.escape(w.fix)}.</span></li>' for w in warnings)
    n = len(warnings)
    return (f'<div class="gv-warnings"><b class="gv-warnings-head">Analyzer: {n} warning{"s" if n > 1 else ""}</b>'
            f'<ul>{items}</ul></div>')


def graph_outputs(spec: ArchitectureSpec, analysis: Analysis, selected: str | None) -> dict[str, Any]:
    """The graph view's outputs of a (new) design: ``graph`` and ``warnings``."""
    return {"graph": graph_value(spec, analysis, selected), "warnings": warnings_html(design_warnings(spec, analysis))}


GRAPH_TEMPLATE = """
<div class="gv-wrap">
  <div class="gv-main"><div class="gv-canvas"></div><div class="gv-tip"></div>
    <div class="gv-legend">click a node to edit its block and see its inside · scroll to zoom · drag to pan</div></div>
  <div class="gv-side"><div class="gv-inside-title">Inside the selected block</div>
    <div class="gv-inside"></div></div>
</div>
"""

#: page-level styles of the analyzer panel (added to the app's CSS)
GRAPH_PAGE_CSS = """
.gv-warnings {font-size: 13px; border: 1px solid #f59e0b; background: #fffbeb; border-radius: 8px; padding: 6px 10px;
              max-height: 470px; overflow-y: auto;}
.gv-warnings.ok {border-color: #10b981; background: #ecfdf5; color: #065f46;}
.gv-warnings .gv-warnings-head {display: block; margin-bottom: 2px;}
.gv-warnings ul {margin: 4px 0 0 0; padding: 0; list-style: none;}
.gv-warnings li {margin: 0; padding: 6px 0; border-top: 1px solid #fde68a; line-height: 1.35;}
.gv-warnings li .place {display: block; font-weight: 600;}
.gv-warnings .fix {display: block; color: #92400e; margin-top: 2px;}
"""

GRAPH_CSS = """
.gv-wrap {display: flex; flex-wrap: wrap; gap: 8px; width: 100%;}
.gv-main {position: relative; flex: 3 1 0; min-width: 320px;}
.gv-canvas {height: 440px; border: 1px solid var(--border-color-primary); border-radius: 8px; background: #fff;}
.gv-side {flex: 1 1 0; min-width: 260px; display: flex; flex-direction: column;}
.gv-inside-title {font-size: 12px; font-weight: 600; margin: 2px 0 4px 2px;}
.gv-inside {flex: 1; min-height: 440px; border: 1px solid var(--border-color-primary); border-radius: 8px;
            background: #fafbfd;}
.gv-tip {position: absolute; pointer-events: none; display: none; background: rgba(17,24,39,.92); color: #fff;
         font-size: 12px; line-height: 1.35; padding: 6px 8px; border-radius: 6px; z-index: 10; max-width: 320px;}
.gv-tip b {color: #fff;}
.gv-legend {font-size: 11px; color: var(--body-text-color-subdued); margin-top: 3px;}
"""

#: runs once per page (``js_on_load``): ``element`` is the component, ``props.value`` the graph data
GRAPH_JS = r"""
const canvas = element.querySelector('.gv-canvas');
const insideBox = element.querySelector('.gv-inside');
const insideTitle = element.querySelector('.gv-inside-title');
const tip = element.querySelector('.gv-tip');
let cy = null, cyInside = null, drawn = '', nodesById = {};
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(3) + ' G' : n >= 1e6 ? (n / 1e6).toFixed(3) + ' M' :
  n >= 1e3 ? (n / 1e3).toFixed(1) + ' k' : String(n);
const shape = (s) => s.slice(1).join('×');
const style = [
  {selector: 'node', style: {'label': 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'center',
    'text-halign': 'center', 'font-size': 10, 'font-family': 'system-ui, sans-serif', 'color': '#111827',
    'background-color': 'data(colour)', 'background-opacity': 0.28, 'border-width': 1.5,
    'border-color': 'data(colour)', 'shape': 'data(shape)', 'width': 124, 'height': 34, 'text-max-width': 120,
    'z-index': 10, 'z-index-compare': 'manual'}},
  {selector: 'node.flow', style: {'width': 16, 'height': 16, 'font-size': 11, 'background-opacity': 0.9,
    'background-color': '#e5e7eb', 'border-color': '#9ca3af', 'text-max-width': 200}},
  {selector: 'node.input', style: {'width': 110, 'height': 22, 'shape': 'round-rectangle', 'font-size': 10}},
  {selector: 'node.split', style: {'label': ''}},
  {selector: 'node.stagebox', style: {'label': 'data(label)', 'text-valign': 'top', 'text-halign': 'center',
    'font-size': 11, 'font-weight': 600, 'color': '#374151', 'background-color': '#f3f5f9',
    'background-opacity': 1, 'border-width': 1, 'border-color': '#d1d5db', 'shape': 'round-rectangle',
    'width': 'data(w)', 'height': 'data(h)', 'text-wrap': 'wrap', 'text-max-width': 150, 'text-margin-y': -3,
    'z-index': 0, 'z-index-compare': 'manual', 'events': 'no'}},
  {selector: 'edge', style: {'z-index': 5, 'z-index-compare': 'manual', 'width': 1.4, 'line-color': '#6b7280',
    'target-arrow-color': '#6b7280',
    'target-arrow-shape': 'triangle', 'arrow-scale': 0.8, 'curve-style': 'bezier'}},
  {selector: 'edge.residual', style: {'line-style': 'dashed', 'line-color': '#059669',
    'target-arrow-color': '#059669', 'curve-style': 'unbundled-bezier', 'control-point-distances': [-72],
    'control-point-weights': [0.5]}},
  {selector: 'edge.cross', style: {'curve-style': 'straight', 'line-color': '#9ca3af',
    'target-arrow-color': '#9ca3af'}},
  {selector: 'node.selected', style: {'border-width': 3.5, 'border-color': '#dc2626', 'background-opacity': 0.55}},
];
function elementsOf(g) {
  // stages are drawn as boxes behind their columns (plain nodes, not compound parents: dagre runs
  // faster without clusters, and the boxes are sized after the layout)
  const els = [];
  for (const grp of g.groups) els.push({group: 'nodes', classes: 'stagebox',
    data: {id: 'g:' + grp.id, label: grp.label + '\n' + grp.resolution, w: 10, h: 10}});
  nodesById = {};
  for (const n of g.nodes) {
    nodesById[n.id] = n;
    const cls = n.kind === 'unit' ? 'unit' : 'flow ' + n.kind;
    els.push({group: 'nodes', classes: cls, data: {id: n.id, group: n.group, label: n.kind === 'split' ? '' : n.label,
      colour: n.colour, shape: n.shape, key: n.key}});
  }
  const groupOf = {};
  for (const n of g.nodes) groupOf[n.id] = n.group;
  g.edges.forEach((e, i) => els.push({group: 'edges',
    classes: e.kind + (groupOf[e.source] !== groupOf[e.target] ? ' cross' : ''),
    data: {id: 'e' + i, source: e.source, target: e.target, label: e.label}}));
  return els;
}
function layoutColumns(g) {
  // one dagre run lays out every stage top to bottom (the edges between stages and the residual skips
  // are left out, so each stage is a chain of its own); then the stages stand side by side as columns
  const inner = cy.nodes().not('.stagebox');
  inner.union(cy.edges().not('.cross').not('.residual')).layout({name: 'dagre', rankDir: 'TB', nodeSep: 14,
    rankSep: 16, edgeSep: 8, fit: false, animate: false}).run();
  let x = 0;
  const top = 34, pad = 8;
  for (const grp of g.groups) {
    const kids = inner.filter(n => n.data('group') === grp.id);
    const bb = kids.boundingBox({includeLabels: false, includeOverlays: false});
    const w = Math.max(bb.w, 124);
    kids.shift({x: x - bb.x1 + (w - bb.w) / 2, y: top - bb.y1});
    const box = cy.getElementById('g:' + grp.id);
    box.data({w: w + 2 * pad, h: bb.h + 2 * pad});
    box.position({x: x + w / 2, y: top + bb.h / 2});
    x += w + 2 * pad + 14;
  }
}
function highlight(key) {
  cy.nodes('.selected').removeClass('selected');
  if (key) cy.nodes().filter(n => n.data('key') === key).addClass('selected');
}
let insideKey = '';
function showInside(n) {
  const key = n && n.inside ? n.place + JSON.stringify(n.inside) : '';
  if (key === insideKey && cyInside) return;
  insideKey = key;
  if (!n || !n.inside) {
    insideTitle.textContent = 'Inside the selected block';
    if (cyInside) cyInside.elements().remove();
    return;
  }
  insideTitle.textContent = n.place + ' · ' + n.inside.title;
  const els = n.inside.nodes.map(x => ({group: 'nodes', classes: x.op, data: {id: x.id, label: x.label}}))
    .concat(n.inside.edges.map((e, i) => ({group: 'edges',
      data: {id: 'i' + i, source: e.source, target: e.target, label: e.label}})));
  if (!cyInside) cyInside = cytoscape({container: insideBox, elements: [], style: [
    {selector: 'node', style: {'label': 'data(label)', 'text-wrap': 'wrap', 'text-max-width': 200, 'font-size': 10,
      'text-valign': 'center', 'shape': 'round-rectangle', 'width': 210, 'height': 28, 'background-color': '#e0e7ff',
      'border-width': 1, 'border-color': '#6366f1', 'font-family': 'system-ui, sans-serif'}},
    {selector: 'node.io', style: {'background-color': '#f3f4f6', 'border-color': '#9ca3af'}},
    {selector: 'node.add', style: {'background-color': '#d1fae5', 'border-color': '#059669'}},
    {selector: 'node.downsample', style: {'background-color': '#fef3c7', 'border-color': '#d97706'}},
    {selector: 'node.attention', style: {'background-color': '#fce7f3', 'border-color': '#db2777'}},
    {selector: 'edge', style: {'label': 'data(label)', 'font-size': 9, 'width': 1.2, 'curve-style': 'bezier',
      'target-arrow-shape': 'triangle', 'arrow-scale': 0.7, 'line-color': '#6b7280', 'target-arrow-color': '#6b7280',
      'text-background-color': '#fafbfd', 'text-background-opacity': 1, 'text-background-padding': 1,
      'color': '#1f2937', 'font-family': 'ui-monospace, monospace'}},
  ]});
  cyInside.elements().remove();
  cyInside.add(els);
  cyInside.layout({name: 'dagre', rankDir: 'TB', nodeSep: 30, rankSep: 26, fit: true, padding: 10,
    animate: false}).run();
  if (cyInside.zoom() > 1.1) { cyInside.zoom(1.1); cyInside.center(); }
}
function selectedNode(g) {
  return g.nodes.find(n => n.key === g.selected && n.kind === 'unit');
}
function render() {
  if (!props.value || typeof props.value !== 'string' || typeof cytoscape === 'undefined') return;
  const t0 = performance.now();
  const g = JSON.parse(props.value);
  const sig = g.layout_key;
  if (!cy || !element.contains(cy.container())) {
    cy = cytoscape({container: element.querySelector('.gv-canvas'), elements: [], style: style,
      minZoom: 0.2, maxZoom: 2.5, autoungrabify: true, boxSelectionEnabled: false,
      textureOnViewport: true, hideEdgesOnViewport: false});
    element._cy = cy;  // for the browser tests and benchmarks/ui_latency.py
    // a block picked elsewhere (the picker, the table): highlight it and show its inside
    element.querySelector('.gv-canvas')._gv = {cy: cy, select: (key) => {
      if (!cy) return;
      highlight(key);
      showInside(Object.values(nodesById).find(n => n.key === key && n.kind === 'unit'));
    }};
    cy.on('tap', 'node', (evt) => {
      const n = nodesById[evt.target.id()];
      if (!n || !n.key) return;
      highlight(n.key);
      showInside(n.kind === 'unit' ? n : null);
      trigger('select', {key: n.key, node: n.id});
    });
    cy.on('mouseover', 'node', (evt) => {
      const n = nodesById[evt.target.id()];
      if (!n || n.kind !== 'unit') return;
      tip.innerHTML = '<b>' + n.place + '</b> · ' + n.type + '<br>' + shape(n.in_shape) + ' → ' + shape(n.out_shape) +
        '<br>params ' + n.params.toLocaleString() + ' (' + fmt(n.params) + ')<br>MACs ' + n.macs.toLocaleString() +
        ' (' + fmt(n.macs) + ')';
      const p = evt.renderedPosition;
      tip.style.left = Math.min(p.x + 14, canvas.clientWidth - 240) + 'px';
      tip.style.top = (p.y + 14) + 'px';
      tip.style.display = 'block';
    });
    cy.on('mouseout', 'node', () => { tip.style.display = 'none'; });
    // a resized window (or a column that wrapped under another) refits the drawing to the canvas
    if (window.ResizeObserver) {
      let width = canvas.clientWidth;
      new ResizeObserver(() => {
        if (!cy || !drawn || canvas.clientWidth === width) return;
        width = canvas.clientWidth;
        cy.resize(); cy.fit(undefined, 12);
        if (cy.zoom() > 1.15) { cy.zoom(1.15); cy.center(); }
      }).observe(canvas);
    }
    drawn = '';
  }
  const phases = {};
  if (sig === drawn) {  // the same nodes and edges: new labels (shapes, widths), colours and keys in place
    nodesById = {};
    cy.batch(() => {
      for (const grp of g.groups) cy.getElementById('g:' + grp.id).data('label', grp.label + '\n' + grp.resolution);
      for (const n of g.nodes) {
        nodesById[n.id] = n;
        cy.getElementById(n.id).data({label: n.kind === 'split' ? '' : n.label, colour: n.colour, shape: n.shape,
          key: n.key});
      }
    });
    phases.relabel = performance.now() - t0;
  } else {
    cy.batch(() => { cy.elements().remove(); cy.add(elementsOf(g)); });
    phases.add = performance.now() - t0;
    layoutColumns(g);
    phases.layout = performance.now() - t0;
    cy.fit(undefined, 12);
    if (cy.zoom() > 1.15) { cy.zoom(1.15); cy.center(); }
    drawn = sig;
  }
  highlight(g.selected);
  phases.fit = performance.now() - t0;
  showInside(selectedNode(g));
  phases.inside = performance.now() - t0;
  element.querySelector('.gv-canvas').dataset.phases = JSON.stringify(phases);
  const ms = performance.now() - t0;
  const c = element.querySelector('.gv-canvas');
  c.dataset.renderMs = ms.toFixed(1);
  c.dataset.renders = String(Number(c.dataset.renders || 0) + 1);
  c.dataset.nodes = String(g.nodes.length);
  c.dataset.selected = g.selected || '';
}
function start(tries) {
  // the first drawing waits for the page to settle (the numbers and charts come first)
  if (typeof cytoscape !== 'undefined' && typeof cytoscapeDagre !== 'undefined') {
    if (window.requestIdleCallback) requestIdleCallback(() => render(), {timeout: 1500}); else setTimeout(render, 0);
    return;
  }
  if (tries > 0) setTimeout(() => start(tries - 1), 50);
}
watch('value', render);
start(200);
"""
