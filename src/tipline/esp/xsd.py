"""Tipline's own schema document for GET /ispws/xsd, generated from esp.schema.

It states the structure Tipline checks (element names, order, cardinality and attributes).
Simple values appear as strings: the value rules (enumerations, lengths, dates) are applied
by esp.schema and described in the partner documentation.
"""

from __future__ import annotations

from functools import lru_cache
from xml.sax.saxutils import quoteattr

from tipline.esp import schema
from tipline.esp.xml import Attr, Child, Complex, Simple

XS = "http://www.w3.org/2001/XMLSchema"


def _attrs(attrs: tuple[Attr, ...], pad: str) -> list[str]:
    required = ' use="required"'
    return [f'{pad}<xs:attribute name={quoteattr(a.name)} type="xs:string"'
            f'{required if a.required else ""}/>' for a in attrs]


def _element(child: Child, pad: str) -> list[str]:
    occurs = f' minOccurs="{child.min}"'
    occurs += ' maxOccurs="unbounded"' if child.max is None else f' maxOccurs="{child.max}"'
    head = f"{pad}<xs:element name={quoteattr(child.name)}{occurs}"
    return [head + ">", *_type(child.kind, pad + "  "), f"{pad}</xs:element>"]


def _type(kind: Simple | Complex, pad: str) -> list[str]:
    if isinstance(kind, Simple):
        if not kind.attrs:
            return [f"{pad}<xs:simpleType><xs:restriction base=\"xs:string\"/></xs:simpleType>"]
        return [f"{pad}<xs:complexType><xs:simpleContent><xs:extension base=\"xs:string\">",
                *_attrs(kind.attrs, pad + "  "),
                f"{pad}</xs:extension></xs:simpleContent></xs:complexType>"]
    group = {"seq": "sequence", "all": "all", "choice": "choice"}[kind.mode]
    lines = [f"{pad}<xs:complexType>", f"{pad}  <xs:{group}>"]
    for child in kind.children:
        lines += _element(child, pad + "    ")
    lines += [f"{pad}  </xs:{group}>", *_attrs(kind.attrs, pad + "  "), f"{pad}</xs:complexType>"]
    return lines


@lru_cache(maxsize=1)
def schema_document() -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<xs:schema xmlns:xs="{XS}" elementFormDefault="qualified">',
             "  <xs:annotation><xs:documentation>Tipline partner API: the report and fileDetails "
             "documents as Tipline checks them. Written by the Tipline project."
             "</xs:documentation></xs:annotation>"]
    for name, kind in (("report", schema.REPORT), ("fileDetails", schema.FILE_DETAILS)):
        lines += [f'  <xs:element name="{name}">', *_type(kind, "    "), "  </xs:element>"]
    lines.append("</xs:schema>")
    return ("\n".join(lines) + "\n").encode("utf-8")
