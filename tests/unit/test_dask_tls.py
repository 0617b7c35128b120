"""The Dask engine over TLS, on loopback: a real scheduler and worker with generated
certificates; the harness's client connects with --tls-dir, and without it is refused."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.errors import UsageError
from harness.matrix.dask_engine import connect, security

distributed = pytest.importorskip("distributed")


def _cert(subject: str, issuer_key: ec.EllipticCurvePrivateKey | None = None,
          issuer: x509.Name | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                              x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                              critical=False)
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                              critical=True))
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def _write(d: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / f"{stem}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    ca_key, ca = _cert("kpharness test CA")
    key, cert = _cert("localhost", ca_key, ca.subject)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write(tmp_path, "node", key, cert)
    (tmp_path / "cert.pem").write_bytes((tmp_path / "node.pem").read_bytes())
    (tmp_path / "key.pem").write_bytes((tmp_path / "node-key.pem").read_bytes())
    return tmp_path


def test_a_tls_scheduler_runs_tasks_for_a_client_with_certificates(tls_dir: Path) -> None:
    from distributed import LocalCluster, Security

    sec = Security(tls_ca_file=str(tls_dir / "ca.pem"),
                   tls_scheduler_cert=str(tls_dir / "node.pem"),
                   tls_scheduler_key=str(tls_dir / "node-key.pem"),
                   tls_worker_cert=str(tls_dir / "node.pem"),
                   tls_worker_key=str(tls_dir / "node-key.pem"),
                   tls_client_cert=str(tls_dir / "node.pem"),
                   tls_client_key=str(tls_dir / "node-key.pem"), require_encryption=True)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                      host="127.0.0.1", security=sec, dashboard_address=None) as cluster:
        addr = cluster.scheduler_address
        assert addr.startswith("tls://")
        with connect(addr, tls_dir) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def test_tls_needs_certificates_and_tcp_refuses_them(tmp_path: Path, tls_dir: Path) -> None:
    with pytest.raises(UsageError) as ei:
        security("tls://127.0.0.1:1", tmp_path / "empty")
    assert "no ca.pem" in ei.value.message
    with pytest.raises(UsageError):
        security("tcp://127.0.0.1:1", tls_dir)
    assert security("tcp://127.0.0.1:1", None) is None
    assert security("tls://127.0.0.1:1", tls_dir).require_encryption
