"""Save and load a quantized graph as one ``.npz`` file (integer arrays + a JSON header), so
that verification can re-run the integer simulator without the run directory."""

import json
from pathlib import Path

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ops.base import Node, Value
from kiloml.ops.fixed import QTensor

FORMAT = "kiloml-integer-graph"
VERSION = 1


def save_graph(graph: Graph, path: Path) -> None:
    """Write the quantized ``graph`` (integer tensors only; float weights are not kept). A
    graph under a patch schedule is saved layer by layer: apply the schedule after loading."""
    if any(node.op == "tiled" for node in graph.nodes):
        raise KilomlError("a graph with a tiled stage cannot be saved; save the layer-by-layer "
                          "graph and apply the schedule after loading")
    arrays = {}
    nodes = []
    for i, node in enumerate(graph.nodes):
        tensors = {}
        for name, tensor in node.q.items():
            key = f"n{i}_{name}"
            arrays[key] = tensor.values.astype(np.int64)
            tensors[name] = {"array": key, "frac_bits": tensor.frac_bits, "bits": tensor.bits,
                             "storage": tensor.storage}
        nodes.append({"name": node.name, "op": node.op, "inputs": node.inputs,
                      "outputs": node.outputs, "attrs": node.attrs, "path": node.path,
                      "consts": node.consts, "tensors": tensors})
    header = {"format": FORMAT, "version": VERSION, "input": graph.input,
              "output": graph.output, "meta": graph.meta,
              "values": [v.to_dict() for v in graph.values.values()], "nodes": nodes}
    np.savez_compressed(path, header=np.array(json.dumps(header)), **arrays)


def load_graph(path: Path) -> Graph:
    """Read a graph written by :func:`save_graph`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            arrays = {key: data[key] for key in data.files if key != "header"}
    except FileNotFoundError:
        raise KilomlError(f"{path}: file not found") from None
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as e:
        raise KilomlError(f"{path}: not a quantized kiloml model ({e})") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise KilomlError(f"{path}: not a quantized kiloml model of format version {VERSION}; "
                          "export the run again")
    graph = Graph(input=header["input"], output=header["output"], meta=header["meta"])
    graph.values = {v["name"]: Value.from_dict(v) for v in header["values"]}
    for entry in header["nodes"]:
        node = Node(entry["name"], entry["op"], entry["inputs"], entry["outputs"],
                    entry["attrs"], {}, entry["path"])
        node.consts = {k: int(v) for k, v in entry["consts"].items()}
        node.q = {name: QTensor(arrays[t["array"]].astype(np.int64), int(t["frac_bits"]),
                                int(t["bits"]), str(t.get("storage", "bytes")))
                  for name, t in entry["tensors"].items()}
        graph.nodes.append(node)
    return graph
