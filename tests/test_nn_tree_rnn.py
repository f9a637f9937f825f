import pytest
import torch

from pynas.arch import NAMED_CELLS
from pynas.nn import TreeRNN
from pynas.ops.reference_cell import reference_cell_sequence


def test_lstm_call_signature_and_shapes():
    rnn = TreeRNN("nas_cell", input_size=7, hidden_size=5, num_layers=3)
    x = torch.randn(4, 2, 7)
    out, (h_n, c_n) = rnn(x)
    assert out.shape == (4, 2, 5)
    assert h_n.shape == (3, 2, 5) and c_n.shape == (3, 2, 5)
    torch.testing.assert_close(h_n[-1], out[-1])
    lstm_out, (lh, lc) = torch.nn.LSTM(7, 5, num_layers=3)(x)
    assert lstm_out.shape == out.shape and lh.shape == h_n.shape and lc.shape == c_n.shape


def test_batch_first_matches_time_first():
    torch.manual_seed(0)
    rnn = TreeRNN("nas_cell", 3, 4, num_layers=2)
    rnn_bf = TreeRNN("nas_cell", 3, 4, num_layers=2, batch_first=True)
    rnn_bf.load_state_dict(rnn.state_dict())
    x = torch.randn(5, 2, 3)
    h0 = torch.randn(2, 2, 4)
    c0 = torch.randn(2, 2, 4)
    out, (h, c) = rnn(x, (h0, c0))
    out_bf, (h_bf, c_bf) = rnn_bf(x.transpose(0, 1), (h0, c0))
    torch.testing.assert_close(out_bf.transpose(0, 1), out)
    torch.testing.assert_close(h_bf, h)
    torch.testing.assert_close(c_bf, c)


def test_single_layer_is_the_reference_cell():
    torch.manual_seed(1)
    rnn = TreeRNN(NAMED_CELLS["nas_cell"], 3, 4).double()
    layer = rnn.layers[0]
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, (h, c) = rnn(x)
    xproj = x @ layer.weight_ih + layer.bias
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    ref, ref_h, ref_c = reference_cell_sequence(rnn.arch, xproj, zeros, zeros, layer.weight_hh)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(c[0], ref_c)


def test_bad_shapes_are_explained():
    rnn = TreeRNN("nas_cell", 3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"input of shape \[T, B, 3\]"):
        rnn(torch.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"h_0 and c_0 must have shape \[2, 2, 4\]"):
        rnn(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
