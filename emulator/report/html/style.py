"""The report's inline style sheet and script (no external font, image or script)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;
padding:16px 24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #d5d9e0}
h3{font-size:15px;margin:6px 0}code{font:12px ui-monospace,monospace}
.meta{color:#5b6475;margin:2px 0}.none{color:#5b6475}
.verdict{display:inline-block;font-weight:700;padding:2px 10px;border-radius:4px;margin:6px 0}
.verdict.pass{background:#dff3e4;color:#13632b}.verdict.fail{background:#fbe0e0;color:#9b1c1c}
td.verdict{display:table-cell}
.failures{color:#9b1c1c}table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#13632b}.down{color:#9b1c1c}
.anomaly{background:#fff6f0;border-left:4px solid #d9480f;padding:6px 12px;margin:8px 0}
.anomaly .help{color:#5b6475}.knob{margin:4px 0}
.toggle{margin:4px 0 8px}
.diagrams{overflow-x:auto;background:#fff;border:1px solid #d5d9e0}
#compress:not(:checked)~.diagrams .compressed,#compress:checked~.diagrams .simulated{display:none}
svg.sequence{font:11px system-ui,sans-serif}
.lifeline{stroke:#9aa3b2;stroke-dasharray:4 4}.lanehead{fill:#e5e9f2;stroke:#9aa3b2}
.lanename{font-weight:700;font-size:12px}
.tick{fill:#5b6475;font:10px ui-monospace,monospace}
.idle rect{fill:#f0f1f4}.idle text{fill:#5b6475;font-style:italic}
.step-boundary line{stroke:#3b5bdb;stroke-width:1}.step-boundary.end line{stroke-dasharray:6 3}
.steplbl{fill:#3b5bdb;font-weight:600}
.fault-span rect{fill:#ffe3e3;stroke:#fa5252;stroke-dasharray:3 2;opacity:.75}
.faultlbl{fill:#c92a2a;font-size:10px}
.arrow line{stroke:#1d2330;stroke-width:1.4}.arrow.print line{stroke:#5f3dc4}
.arrow.card line{stroke:#087f5b}.arrow.failed line,.arrow.corrupted line{stroke:#e03131;
stroke-dasharray:5 3}.arrow.lost line{stroke:#e03131;stroke-dasharray:2 3}
.cross{stroke:#e03131;stroke-width:2.2;fill:none}
#head path{fill:#1d2330}.albl{fill:#1d2330;font-size:10.5px;paint-order:stroke;stroke:#fff;
stroke-width:3px}
.lbl,.oklbl,.badlbl,.moneylbl{font-size:10.5px;paint-order:stroke;stroke:#fff;stroke-width:3px}
.oklbl{fill:#13632b}.badlbl{fill:#c92a2a;font-weight:600}.moneylbl{fill:#0b7285;font-weight:700}
.dot{fill:#5b6475}.money{fill:#0b7285}.ok{fill:#2f9e44}.bad{fill:#e03131}
.ev{cursor:pointer}.ev:hover line,.ev:hover rect{stroke-width:3}.ev.sel line{stroke:#f08c00}
circle.ev:hover{r:6}
.anomaly-pin path{fill:#d9480f}.anomaly-pin text{fill:#fff;font-weight:700}
.anomalylbl{fill:#d9480f;font-weight:700}
.event{background:#1d2330;color:#e9ecef;padding:8px;white-space:pre-wrap;min-height:2em;
font:12px ui-monospace,monospace}
.receipts{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.receipt{margin:0}.receipt figcaption{color:#5b6475;font-size:12px;margin-top:4px}
.paper{background:#fff;width:42ch;padding:10px 12px;box-shadow:0 1px 4px rgba(0,0,0,.25);
font:13px/1.25 ui-monospace,"DejaVu Sans Mono",monospace;white-space:pre;overflow:hidden}
.prow{min-height:1.25em}.prow.center{text-align:center}.prow.right{text-align:right}
.prow .b{font-weight:800}.prow .u{text-decoration:underline}
.prow .r{background:#000;color:#fff}
.prow .w2{display:inline-block;transform:scaleX(2);transform-origin:left;margin-right:1ch}
.prow .h2{display:inline-block;transform:scaleY(2);transform-origin:bottom}
.prow .w2.h2{transform:scale(2)}
.prow.center .w2,.prow.center .w3,.prow.center .w4{transform-origin:center bottom}
.prow.right .w2,.prow.right .w3,.prow.right .w4{transform-origin:right bottom}
.prow.t2{min-height:2.5em;line-height:2.5em}
.prow .w3,.prow .w4,.prow .w5,.prow .w6,.prow .w7,.prow .w8{display:inline-block;
transform:scale(3);transform-origin:left bottom}
.prow img{image-rendering:pixelated;max-width:100%}.nothing{color:#868e96;font-style:italic}
.cut{border-top:2px dashed #868e96;color:#868e96;margin-top:6px;text-align:left;
font-size:12px;line-height:1}
.torn{height:12px;margin:6px -12px -10px;background:linear-gradient(135deg,#fff 33%,transparent 33%)
0 0/12px 12px,linear-gradient(225deg,#fff 33%,transparent 33%) 0 0/12px 12px;
background-color:#e03131}
.tornlbl{color:#c92a2a;font-weight:700;text-align:center;margin-top:14px;white-space:normal}
.receipt.failed .paper,.receipt.unfinished .paper{padding-bottom:0}
.trace td{font-size:12px}tr.sel td{background:#fff3bf}
.index tr.fail td:first-child{border-left:4px solid #e03131}
.fleet-chart{background:#fff;border:1px solid #d5d9e0}.legend .key{margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""

SCRIPT = r"""
(function(){
  var pane=document.getElementById('event');
  var events=document.querySelectorAll('.ev');
  function show(el){
    document.querySelectorAll('.sel').forEach(function(s){s.classList.remove('sel');});
    el.classList.add('sel');
    var title=el.querySelector('title');
    var row=document.getElementById('ev-'+el.getAttribute('data-event'));
    if(row){row.classList.add('sel');}
    if(pane&&title){
      try{pane.textContent=JSON.stringify(JSON.parse(title.textContent),null,2);}
      catch(e){pane.textContent=title.textContent;}
    }
  }
  events.forEach(function(el){el.addEventListener('click',function(){show(el);});});
  var asked=/^#ev-(\d+)$/.exec(location.hash);
  if(asked){
    var shown=document.querySelector('circle.ev[data-event="'+asked[1]+'"]');
    if(shown){show(shown);}
  }
})();
"""
